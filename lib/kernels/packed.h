/* q4_0 / q8_0 / q4_K / q6_K weights re-laid once, at load, for the packed kernels: AVX-512 VNNI
 * (packed_avx512.c) or AVX2 (packed_avx2.c, which multiplies through maddubs and reads a tile as
 * two halves of 8 rows).
 *
 * In the file a weight row keeps its 32-value blocks together, so a kernel that reads one row at a
 * time must unpack and transpose each block for VNNI and finish every output with a horizontal
 * sum, work it repeats for each activation row. Here 16 weight rows form a tile and their blocks
 * are interleaved: in block b of a tile, int32 lane i of 64-byte slice j holds four consecutive
 * quants of row i, so one dpbusd multiplies all 16 rows by the same four activation quants
 * (broadcast from memory) and the tile's 16 outputs for an activation row come out in one register.
 * The unpacking left is a nibble split (q4_0, q4_K; q6_K adds its top bits), done once per block
 * for up to PACKED_ROWS_PER_PASS activation rows, so the product streams the weights at memory
 * speed for the few rows of a decode step and runs as a register-blocked integer GEMM for a
 * prefill.
 *
 * A tile is n_in / 32 blocks: first every block's quants, then every block's 16 fp16 scales (the
 * file's d of each row, unchanged), padded to 64 bytes. Quants are unsigned, value = d * (u - o):
 *   q4_0  256 bytes per block: byte 64j + 4i + v (j < 4) holds value 4j + v of row i in its low
 *         nibble and value 16 + 4j + v in its high nibble (the file's nibbles, moved); o = 8.
 *   q8_0  512 bytes per block: byte 64j + 4i + v (j < 8) is value 4j + v of row i plus 128; o = 128.
 *   q4_K  the quants as q4_0's, each 32-value sub-block a block; in place of the
 *         fp16 d, the 16 rows' 6-bit scales sc then mins m as bytes; after them, per 256-value
 *         super-block, the rows' fp16 d then dmin (PACKED_Q4_K_SUPER_BYTES). value = s * u - mn
 *         with s = d * sc and mn = dmin * m, both exact in float; o = -1 (see below).
 *   q6_K  384 bytes per block: the low four bits of the 6-bit quants as q4_0's nibbles, then two
 *         64-byte slices of the top two bits: byte 4i + v of slice h holds, in bits 2j..2j+1,
 *         those of value 16h + 4j + v of row i. In place of the fp16 d, the rows' int8 scales of
 *         values 0..15 then of values 16..31 (the file's 16-value groups); after them, per
 *         super-block, the rows' fp16 d (PACKED_Q6_K_SUPER_BYTES). value = d * sc * (u - 32),
 *         o = 32, d * sc exact in float. 210 bytes per 256 values of a row, as in the file.
 * Activations are quantised per row to block_q8_offset: the products are exact int32 sums of
 * u * a, started from -o * sum(a) so that the offset comes off in integers (q4_K's kernel keeps
 * the sum apart instead, o = -1, to multiply it by each row's min). The sums are kept per half
 * block because q6_K scales the two halves apart. An activation scale d covers one block for q4_0
 * and q8_0 (llama.cpp's q8_0) and the 8 blocks of a super-block for q4_K and q6_K (as its q8_K
 * does), so that their kernels scale a super-block's sums by it once. */
#ifndef R2GEN_KERNELS_PACKED_H
#define R2GEN_KERNELS_PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "quant.h"

#define PACKED_TILE_ROWS 16
/* Activation rows that share one unpacking of a weight block (their accumulators stay in
 * registers: 8 accumulators + 8 weight registers + temporaries fit the 32 zmm registers). */
#define PACKED_ROWS_PER_PASS 8
/* Bytes of each 256-value super-block's fp16 scales for the 16 rows: q4_K's d and dmin, q6_K's d */
#define PACKED_Q4_K_SUPER_BYTES (2 * PACKED_TILE_ROWS * sizeof(uint16_t))
#define PACKED_Q6_K_SUPER_BYTES (PACKED_TILE_ROWS * sizeof(uint16_t))

/* 32 activation values x = d * qs[i]; offset_sum[h] = -o * the sum of qs[16h..16h+15] for the
 * weights' offset o. */
typedef struct block_q8_offset {
    int8_t qs[32];
    float d;
    int32_t offset_sum[2];
} block_q8_offset;

typedef struct packed_layout {
    tensor_type type; /* of the blocks: TENSOR_Q4_0, TENSOR_Q8_0, TENSOR_Q4_K or TENSOR_Q6_K */
    int64_t n_in;     /* values per weight row, a multiple of 32 */
    size_t tile_bytes;
    kernel_path path; /* whose kernels run it: KERNEL_AVX512 or KERNEL_AVX2 */
} packed_layout;

/* Whether rows of n_in values of this type can be packed and the packed kernels run on this CPU
 * (AVX2 or AVX-512 VNNI; R2GEN_CPU caps the path as for every kernel). */
int packed_supported(tensor_type type, int64_t n_in);
packed_layout packed_layout_of(tensor_type type, int64_t n_in);

/* Packs 16 consecutive rows of the file's blocks (rows row_bytes apart) into one tile. */
void packed_fill_tile(const packed_layout *layout, const void *rows, void *tile);

/* Values that share one activation scale d: 32, or 256 for the K-quants (see above). */
int64_t packed_act_group(const packed_layout *layout);

/* Bytes of one quantised activation row of n_in values. */
size_t packed_act_row_bytes(const packed_layout *layout);
/* One activation row of n_in floats -> block_q8_offset blocks for these weights. */
void packed_quantize_act(const packed_layout *layout, const float *x, void *act);

/* y[r][16t .. 16t + 15] = the 16 outputs of tile t < n_tiles (tiles consecutive from `tiles`) for
 * activation rows r < n_rows (rows act_stride bytes apart in act, y_stride floats apart in y). */
void packed_tiles_product(const packed_layout *layout, const void *tiles, int64_t n_tiles,
                          const void *act, size_t act_stride, int64_t n_rows, float *y,
                          size_t y_stride);

#endif
