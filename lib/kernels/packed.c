/* The packed layout (see packed.h): what can be packed, and the packing itself, in portable C
 * (it runs once per weight at load). */
#include "packed.h"

#include <string.h>

#include "packed_kernels.h"
#include "quant.h"

int packed_supported(tensor_type type, int64_t n_in)
{
    kernel_path path = kernels_select()->path;
    return (type == TENSOR_Q4_0 || type == TENSOR_Q8_0) && path >= KERNEL_AVX2 && n_in > 0 &&
           n_in % QK8_0 == 0;
}

/* Bytes of one block's quants for the 16 rows of a tile. */
static size_t tile_block_quant_bytes(tensor_type type)
{
    return type == TENSOR_Q4_0 ? PACKED_TILE_ROWS * QK4_0 / 2 : PACKED_TILE_ROWS * QK8_0;
}

packed_layout packed_layout_of(tensor_type type, int64_t n_in)
{
    size_t n_blocks = (size_t)(n_in / QK8_0);
    size_t bytes = n_blocks * (tile_block_quant_bytes(type) + PACKED_TILE_ROWS * sizeof(uint16_t));
    packed_layout layout = {type, n_in, (bytes + 63) / 64 * 64, kernels_select()->path};
    return layout;
}

/* Block b of row i -> its four-quant words in the tile's quants of block b (layout in packed.h)
 * and its scale. */
static void fill_block_q4_0(const block_q4_0 *src, int i, uint8_t *quants, uint16_t *scale)
{
    *scale = src->d;
    for (int j = 0; j < 4; j++) /* low nibbles: values 4j.., high nibbles: values 16 + 4j.. */
        memcpy(quants + 64 * j + 4 * i, src->qs + 4 * j, 4);
}

static void fill_block_q8_0(const block_q8_0 *src, int i, uint8_t *quants, uint16_t *scale)
{
    *scale = src->d;
    for (int j = 0; j < 8; j++) {
        uint32_t word;
        memcpy(&word, src->qs + 4 * j, sizeof word);
        word ^= 0x80808080u; /* q + 128 in every byte */
        memcpy(quants + 64 * j + 4 * i, &word, sizeof word);
    }
}

void packed_fill_tile(const packed_layout *layout, const void *rows, void *tile)
{
    int64_t n_blocks = layout->n_in / QK8_0;
    size_t block_bytes = tile_block_quant_bytes(layout->type);
    size_t row_bytes = tensor_row_bytes(layout->type, layout->n_in);
    uint8_t *quants = tile;
    uint16_t *scales = (uint16_t *)(quants + (size_t)n_blocks * block_bytes);
    uint8_t *padding = (uint8_t *)(scales + (size_t)n_blocks * PACKED_TILE_ROWS);
    memset(padding, 0, (size_t)(quants + layout->tile_bytes - padding));
    for (int i = 0; i < PACKED_TILE_ROWS; i++) {
        const char *row = (const char *)rows + (size_t)i * row_bytes;
        for (int64_t b = 0; b < n_blocks; b++) {
            uint8_t *block_quants = quants + (size_t)b * block_bytes;
            uint16_t *scale = scales + (size_t)b * PACKED_TILE_ROWS + i;
            if (layout->type == TENSOR_Q4_0)
                fill_block_q4_0((const block_q4_0 *)row + b, i, block_quants, scale);
            else
                fill_block_q8_0((const block_q8_0 *)row + b, i, block_quants, scale);
        }
    }
}

size_t packed_act_row_bytes(const packed_layout *layout)
{
    return (size_t)(layout->n_in / QK8_0) * sizeof(block_q8_offset);
}

void packed_quantize_act(const packed_layout *layout, const float *x, void *act)
{
    if (layout->path == KERNEL_AVX512)
        packed_quantize_act_avx512(layout, x, act);
    else
        packed_quantize_act_avx2(layout, x, act);
}

void packed_tile_product(const packed_layout *layout, const void *tile, const void *act,
                         size_t act_stride, int64_t n_rows, float *y, size_t y_stride)
{
    if (layout->path == KERNEL_AVX512)
        packed_tile_product_avx512(layout, tile, act, act_stride, n_rows, y, y_stride);
    else
        packed_tile_product_avx2(layout, tile, act, act_stride, n_rows, y, y_stride);
}

void packed_passes(const packed_layout *layout, const void *tile, const void *act, size_t act_stride,
                   int64_t n_rows, float *y, size_t y_stride, int max_rows, packed_pass_fn *pass)
{
    int64_t n_passes = (n_rows + max_rows - 1) / max_rows;
    for (int64_t r0 = 0, i = 0; i < n_passes; i++) {
        int64_t r1 = n_rows * (i + 1) / n_passes;
        pass(layout, tile, (const char *)act + r0 * act_stride, act_stride, (int)(r1 - r0),
             y + r0 * y_stride, y_stride);
        r0 = r1;
    }
}
