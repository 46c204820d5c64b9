/* Quantised weight blocks and the row kernels that use them.
 *
 * Block layouts are byte-for-byte those of ggml/GGUF, so a tensor's data can be used in place from
 * the mapped file. Activations are quantised on the fly to the "dot partner" format of the weight
 * type (q8_0 for q8_0/q4_0 weights, q8_K for q4_K/q6_K) so the inner products run on integers.
 *
 * Every kernel exists in a scalar reference version and in AVX2 and AVX-512 versions; a `kernels`
 * table holds one complete set. kernels_select() picks the best set this CPU supports; the
 * environment variable R2GEN_CPU=scalar|avx2|avx512 caps the choice at a lower path (a request for
 * a path the CPU lacks falls back to the best one it has), so tests and benchmarks can run each. */
#ifndef R2GEN_KERNELS_QUANT_H
#define R2GEN_KERNELS_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

#define QK8_0 32
#define QK4_0 32
#define QK_K 256

/* 32 values: x = d * qs[i]. */
typedef struct block_q8_0 {
    uint16_t d; /* fp16 */
    int8_t qs[QK8_0];
} block_q8_0;

/* 32 values: value j (< 16) is the low nibble of qs[j], value j + 16 its high nibble;
 * x = d * (q - 8). */
typedef struct block_q4_0 {
    uint16_t d; /* fp16 */
    uint8_t qs[QK4_0 / 2];
} block_q4_0;

/* 256 values in 8 sub-blocks of 32, each with a 6-bit scale sc and a 6-bit min m packed into
 * `scales` (see q4_K_scale_min); x = d * sc * q - dmin * m. Quants come in 4 chunks of 32 bytes:
 * chunk c holds sub-block 2c in its low nibbles and sub-block 2c + 1 in its high nibbles. */
typedef struct block_q4_K {
    uint16_t d;    /* fp16 scale of the scales */
    uint16_t dmin; /* fp16 scale of the mins */
    uint8_t scales[12];
    uint8_t qs[QK_K / 2];
} block_q4_K;

/* 256 values in 16 groups of 16, group g scaled by scales[g]; x = d * scales[g] * (q - 32) with a
 * 6-bit q. Each half h (128 values) uses ql[64h..64h+64) and qh[32h..32h+32): for l < 32,
 * value 128h + l      = ql[64h + l] low nibble       | qh[32h + l] bits 0-1 << 4
 * value 128h + l + 32 = ql[64h + l + 32] low nibble  | qh[32h + l] bits 2-3 << 4
 * value 128h + l + 64 = ql[64h + l] high nibble      | qh[32h + l] bits 4-5 << 4
 * value 128h + l + 96 = ql[64h + l + 32] high nibble | qh[32h + l] bits 6-7 << 4 */
typedef struct block_q6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d; /* fp16 */
} block_q6_K;

/* Activation partner of the K-quants: 256 values x = d * qs[i], plus the sums of each group of 16
 * quants (the weights' mins and offsets multiply those instead of every value). */
typedef struct block_q8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K;

/* Activation partner of q8_0/q4_0 weights in the AVX-512 set: 16 blocks of 32 values (512) laid
 * out for VNNI, where each int32 lane of a 512-bit register sums the products of one block. The
 * quants come as eight 64-byte slices; slice j holds values 4j..4j+3 of every block, block b in
 * lane q8_group_lane(b) (4 bytes per lane). A row's last group is padded with zero blocks. */
#define QK_GROUP 512
typedef struct block_q8_group {
    int8_t qs[QK_GROUP];
    float d[16];     /* scale of each block (lane order) */
    int32_t sum[16]; /* sum of each block's quants (lane order): the weights' offsets meet it */
} block_q8_group;

/* Lane of block b (< 16): the order that transposing 4 x 4 granules of 4-block registers gives. */
static inline int q8_group_lane(int b) { return 4 * (b % 4) + b / 4; }

/* Position in block_q8_group.qs of value v (< 32) of block b (< 16). */
static inline int q8_group_index(int b, int v) { return 64 * (v / 4) + 4 * q8_group_lane(b) + v % 4; }

/* The most activation rows one dot call takes: a weight row is read once for all of them. */
#define KERNEL_MAX_ROWS 4

/* Kernels for one weight type. n is the row length in values (a whole number of blocks). */
typedef struct type_kernels {
    /* Weight row -> n floats. */
    void (*to_float)(const void *w, float *y, int64_t n);
    /* Activation row (n floats) -> the partner format, act_row_bytes(n) bytes. For float weight
     * types the activation stays float32 and this copies. */
    void (*quantize_act)(const float *x, void *act, int64_t n);
    /* out[r] = dot(weight row w, activation row r) for r < n_rows <= KERNEL_MAX_ROWS, activation
     * rows act_stride bytes apart in the partner format. */
    void (*dot)(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows,
                float *out);
    int64_t act_block_elems;
    size_t act_block_bytes;
} type_kernels;

typedef enum kernel_path {
    KERNEL_SCALAR = 0,
    KERNEL_AVX2 = 1,   /* AVX2 + FMA + F16C */
    KERNEL_AVX512 = 2, /* AVX-512 F/BW/VL/VNNI */
} kernel_path;

typedef struct kernels {
    const char *name; /* "scalar", "avx2", "avx512" */
    kernel_path path;
    type_kernels f16, bf16, q8_0, q4_0, q4_K, q6_K;
} kernels;

/* The best kernel set for this CPU, capped by R2GEN_CPU when set. Cheap: call it per product. */
const kernels *kernels_select(void);
/* One path's kernels, or NULL when this CPU cannot run it. */
const kernels *kernels_for_path(kernel_path path);
/* The kernels of a weight type in a set; NULL for f32 and unknown types. */
const type_kernels *kernels_for_type(const kernels *set, tensor_type type);
/* Whether the CPU has AVX512_BF16 (for oneDNN's bf16 matmul, which matmul.c uses on request). */
int kernels_cpu_has_bf16(void);
/* Bytes of one quantised activation row of n values for a type's kernels (a partial last block
 * of the activation format is padded). */
size_t act_row_bytes(const type_kernels *tk, int64_t n);

/* Sub-block j (< 8) of a q4_K block: its 6-bit scale and min, packed into 12 bytes as ggml packs
 * them (j < 4: low 6 bits of bytes j and j + 4; j >= 4: a nibble of byte j + 4 plus the top two
 * bits of bytes j - 4 and j). */
static inline void q4_K_scale_min(const uint8_t *scales, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/* The 6-bit quant (0..63, before the offset of 32) of value e (< 256) of a q6_K block. */
static inline int q6_K_quant(const block_q6_K *b, int e)
{
    int half = e / 128, quarter = (e % 128) / 32, l = e % 32;
    uint8_t low = b->ql[64 * half + l + 32 * (quarter % 2)];
    int low4 = quarter < 2 ? (low & 0xF) : (low >> 4);
    int high2 = (b->qh[32 * half + l] >> (2 * quarter)) & 3;
    return low4 | (high2 << 4);
}

/* The three kernel sets (avx2/avx512 are only valid on CPUs that kernels_for_path admits). */
extern const kernels kernels_scalar;
extern const kernels kernels_avx2;
extern const kernels kernels_avx512;

#endif
