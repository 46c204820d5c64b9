/* The packed layout (see packed.h): what can be packed, and the packing itself, in portable C
 * (it runs once per weight at load). */
#include "packed.h"

#include <string.h>

#include "packed_kernels.h"
#include "quant.h"

int packed_supported(tensor_type type, int64_t n_in)
{
    kernel_path path = kernels_select()->path;
    int64_t block = type == TENSOR_Q4_K || type == TENSOR_Q6_K ? QK_K : QK8_0;
    return (type == TENSOR_Q4_0 || type == TENSOR_Q8_0 || type == TENSOR_Q4_K ||
            type == TENSOR_Q6_K) &&
           path >= KERNEL_AVX2 && n_in > 0 && n_in % block == 0;
}

/* Bytes of one block's quants for the 16 rows of a tile. */
static size_t tile_block_quant_bytes(tensor_type type)
{
    size_t nibbles = PACKED_TILE_ROWS * QK8_0 / 2;
    return type == TENSOR_Q8_0 ? 2 * nibbles : type == TENSOR_Q6_K ? nibbles + nibbles / 2 : nibbles;
}

/* Bytes of the fp16 scales each 256-value super-block adds to a tile. */
static size_t tile_super_bytes(tensor_type type)
{
    return type == TENSOR_Q4_K ? PACKED_Q4_K_SUPER_BYTES
           : type == TENSOR_Q6_K ? PACKED_Q6_K_SUPER_BYTES : 0;
}

packed_layout packed_layout_of(tensor_type type, int64_t n_in)
{
    size_t n_blocks = (size_t)(n_in / QK8_0);
    /* per block: the quants and 32 bytes of scales (fp16 d, q4_K's sc and m, q6_K's two sc) */
    size_t bytes = n_blocks * (tile_block_quant_bytes(type) + 2 * PACKED_TILE_ROWS);
    bytes += (size_t)(n_in / QK_K) * tile_super_bytes(type);
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

/* Super-block sb of row i (q4_K): its 8 blocks' quants moved as q4_0's are, their sc and m bytes,
 * and d and dmin. */
static void fill_super_q4_K(const block_q4_K *src, int i, int64_t sb, uint8_t *quants,
                            uint8_t *block_scales, uint16_t *super_scales)
{
    for (int sub = 0; sub < 8; sub++) {
        int64_t b = 8 * sb + sub;
        uint8_t u[32]; /* the block's 4-bit quants in value order */
        for (int l = 0; l < 32; l++) u[l] = (src->qs[32 * (sub / 2) + l] >> (4 * (sub % 2))) & 0xF;
        for (int j = 0; j < 4; j++)
            for (int v = 0; v < 4; v++)
                quants[(size_t)b * 256 + 64 * j + 4 * i + v] = (uint8_t)(u[4 * j + v] | u[16 + 4 * j + v] << 4);
        int sc, m;
        q4_K_scale_min(src->scales, sub, &sc, &m);
        block_scales[(size_t)b * 32 + i] = (uint8_t)sc;
        block_scales[(size_t)b * 32 + 16 + i] = (uint8_t)m;
    }
    super_scales[(size_t)sb * 32 + i] = src->d;
    super_scales[(size_t)sb * 32 + 16 + i] = src->dmin;
}

/* Super-block sb of row i (q6_K): per block, the low nibbles as q4_0's, the top two bits in the
 * two slices, the two group scales; and d. */
static void fill_super_q6_K(const block_q6_K *src, int i, int64_t sb, uint8_t *quants,
                            uint8_t *block_scales, uint16_t *super_scales)
{
    for (int sub = 0; sub < 8; sub++) {
        int64_t b = 8 * sb + sub;
        uint8_t *block = quants + (size_t)b * 384;
        for (int j = 0; j < 4; j++)
            for (int v = 0; v < 4; v++) {
                int lo = q6_K_quant(src, 32 * sub + 4 * j + v);
                int hi = q6_K_quant(src, 32 * sub + 16 + 4 * j + v);
                block[64 * j + 4 * i + v] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);
                block[256 + 4 * i + v] |= (uint8_t)((lo >> 4) << (2 * j));
                block[256 + 64 + 4 * i + v] |= (uint8_t)((hi >> 4) << (2 * j));
            }
        block_scales[(size_t)b * 32 + i] = (uint8_t)src->scales[2 * sub];
        block_scales[(size_t)b * 32 + 16 + i] = (uint8_t)src->scales[2 * sub + 1];
    }
    super_scales[(size_t)sb * 16 + i] = src->d;
}

/* Row i's 32-value blocks (q4_0, q8_0) into the tile. */
static void fill_row_blocks(const packed_layout *layout, const void *row, int i, uint8_t *quants,
                            uint16_t *scales)
{
    size_t block_bytes = tile_block_quant_bytes(layout->type);
    for (int64_t b = 0; b < layout->n_in / QK8_0; b++) {
        uint8_t *block_quants = quants + (size_t)b * block_bytes;
        uint16_t *scale = scales + (size_t)b * PACKED_TILE_ROWS + i;
        if (layout->type == TENSOR_Q4_0)
            fill_block_q4_0((const block_q4_0 *)row + b, i, block_quants, scale);
        else
            fill_block_q8_0((const block_q8_0 *)row + b, i, block_quants, scale);
    }
}

void packed_fill_tile(const packed_layout *layout, const void *rows, void *tile)
{
    int64_t n_blocks = layout->n_in / QK8_0, n_supers = layout->n_in / QK_K;
    size_t row_bytes = tensor_row_bytes(layout->type, layout->n_in);
    uint8_t *quants = tile;
    uint8_t *block_scales = quants + (size_t)n_blocks * tile_block_quant_bytes(layout->type);
    uint8_t *end = block_scales + (size_t)n_blocks * 2 * PACKED_TILE_ROWS;
    uint16_t *super_scales = (uint16_t *)end;
    /* q6_K's top bits are or-ed in, so the quants start from zero too */
    memset(tile, 0, layout->tile_bytes);
    for (int i = 0; i < PACKED_TILE_ROWS; i++) {
        const char *row = (const char *)rows + (size_t)i * row_bytes;
        for (int64_t sb = 0; sb < n_supers && layout->type == TENSOR_Q4_K; sb++)
            fill_super_q4_K((const block_q4_K *)row + sb, i, sb, quants, block_scales, super_scales);
        for (int64_t sb = 0; sb < n_supers && layout->type == TENSOR_Q6_K; sb++)
            fill_super_q6_K((const block_q6_K *)row + sb, i, sb, quants, block_scales, super_scales);
        if (layout->type == TENSOR_Q4_0 || layout->type == TENSOR_Q8_0)
            fill_row_blocks(layout, row, i, quants, (uint16_t *)block_scales);
    }
}

int64_t packed_act_group(const packed_layout *layout)
{
    return layout->type == TENSOR_Q4_K || layout->type == TENSOR_Q6_K ? QK_K : QK8_0;
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

void packed_tiles_product(const packed_layout *layout, const void *tiles, int64_t n_tiles,
                          const void *act, size_t act_stride, int64_t n_rows, float *y,
                          size_t y_stride)
{
    if (layout->path == KERNEL_AVX512)
        packed_tiles_product_avx512(layout, tiles, n_tiles, act, act_stride, n_rows, y, y_stride);
    else
        packed_tiles_product_avx2(layout, tiles, n_tiles, act, act_stride, n_rows, y, y_stride);
}

void packed_passes(const packed_layout *layout, const void *tiles, int64_t n_tiles, const void *act,
                   size_t act_stride, int64_t n_rows, float *y, size_t y_stride, int max_rows,
                   packed_pass_fn *pass)
{
    int64_t n_passes = (n_rows + max_rows - 1) / max_rows;
    int64_t group = n_passes > 1 ? PACKED_TILE_GROUP : 1;
    for (int64_t t0 = 0; t0 < n_tiles; t0 += group) {
        int64_t t1 = t0 + group < n_tiles ? t0 + group : n_tiles;
        for (int64_t r0 = 0, i = 0; i < n_passes; i++) {
            int64_t r1 = n_rows * (i + 1) / n_passes;
            for (int64_t t = t0; t < t1; t++)
                pass(layout, (const uint8_t *)tiles + (size_t)t * layout->tile_bytes,
                     (const char *)act + r0 * act_stride, act_stride, (int)(r1 - r0),
                     y + r0 * y_stride + t * PACKED_TILE_ROWS, y_stride);
            r0 = r1;
        }
    }
}
