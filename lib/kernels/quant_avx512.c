/* AVX-512 F/BW/VL/VNNI kernels (compiled with those flags; called only after kernels.c checked the
 * CPU). A 512-bit register holds two 32-value blocks or one 64-value slice of a K-quant block.
 * q8_0/q4_0 products use VNNI dpbusd (u8 x s8 summed straight into int32, never saturating);
 * K-quant products use maddubs (int16 pairs, which cannot saturate for 4- and 6-bit quants) then
 * VNNI dpwssd, which multiplies by the 16-bit sub-block scales and accumulates in one step.
 * The 16-bit float dots are memory-bound and are the AVX2 ones; so is dequantisation. */
#include <immintrin.h>

#include "quant_ref.h"
#include "quant_simd.h"

static inline float half(uint16_t h) { return _cvtsh_ss(h); }

/* ---- q8_0 / q4_0 weights, q8 group activations ---- */

static inline __m512i join256(__m256i lo, __m256i hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* 16 bytes at byte `at` of the quants of blocks b..b+3 (the first `count` present, the others
 * zero), block b + k in 128-bit lane k. */
static inline __m512i four_blocks(const void *w, int64_t b, int count, int q4, int at)
{
    __m512i v = _mm512_setzero_si512();
    for (int k = 0; k < count; k++) {
        const void *qs = q4 ? (const void *)((const block_q4_0 *)w + b + k)->qs
                            : (const void *)((const block_q8_0 *)w + b + k)->qs;
        /* (a masked broadcast, as insert lanes must be compile-time constants) */
        v = _mm512_mask_broadcast_i32x4(v, (__mmask16)(0xF << (4 * k)),
                                        _mm_loadu_si128((const __m128i *)((const char *)qs + at)));
    }
    return v;
}

/* Transposes four registers of four blocks each (r[q] lane 4k + j: 4-byte granule j of block
 * 4q + k) into granule order: t[j] lane 4k + q holds granule j of block 4q + k, the lane order of
 * block_q8_group. */
static inline void transpose_granules(const __m512i r[4], __m512i t[4])
{
    __m512i lo01 = _mm512_unpacklo_epi32(r[0], r[1]), hi01 = _mm512_unpackhi_epi32(r[0], r[1]);
    __m512i lo23 = _mm512_unpacklo_epi32(r[2], r[3]), hi23 = _mm512_unpackhi_epi32(r[2], r[3]);
    t[0] = _mm512_unpacklo_epi64(lo01, lo23);
    t[1] = _mm512_unpackhi_epi64(lo01, lo23);
    t[2] = _mm512_unpacklo_epi64(hi01, hi23);
    t[3] = _mm512_unpackhi_epi64(hi01, hi23);
}

/* The weights of blocks b..b+15 (those below n_blocks; the others zero) as eight registers of
 * unsigned bytes in the layout of block_q8_group: wq[j] lane 4k + q holds values 4j..4j+3 of
 * block 4q + k. q4_0 gives its nibbles q (value q - 8), q8_0 gives q + 128 (value q - 128). */
static inline __attribute__((always_inline)) void
group_weights(const void *w, int64_t b, int64_t n_blocks, int q4, __m512i wq[8])
{
    __m512i r[4];
    for (int h = 0; h < (q4 ? 1 : 2); h++) {
        for (int q = 0; q < 4; q++) {
            int64_t left = n_blocks - (b + 4 * q);
            r[q] = four_blocks(w, b + 4 * q, left >= 4 ? 4 : left > 0 ? (int)left : 0, q4, 16 * h);
        }
        transpose_granules(r, wq + 4 * h);
    }
    if (q4) {
        const __m512i nibble = _mm512_set1_epi8(0x0F);
        for (int j = 0; j < 4; j++) {
            wq[4 + j] = _mm512_and_si512(_mm512_srli_epi16(wq[j], 4), nibble);
            wq[j] = _mm512_and_si512(wq[j], nibble);
        }
    } else {
        for (int j = 0; j < 8; j++) wq[j] = _mm512_xor_si512(wq[j], _mm512_set1_epi8((char)0x80));
    }
}

/* The fp16 scales of blocks b..b+15 (those below n_blocks; the others 0) in lane order: lane
 * 4k + q <- block 4q + k. Each lane gathers the 32 bits at the start of its block (its d and
 * first quants, inside the row) and keeps the low half. */
static inline __m512 group_weight_scales(const void *w, int64_t b, int64_t n_blocks, int block_bytes)
{
    const __m512i lane_block = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    __m512i present = _mm512_set1_epi32((int)(n_blocks - b < 16 ? n_blocks - b : 16));
    __mmask16 valid = _mm512_cmplt_epi32_mask(lane_block, present);
    __m512i offsets = _mm512_mullo_epi32(lane_block, _mm512_set1_epi32(block_bytes));
    const char *base = (const char *)w + b * block_bytes;
    __m512i words = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, offsets, base, 1);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words));
}

/* Weights are unpacked once per group of 16 blocks, transposed so that each int32 lane gathers
 * one block; every activation row then takes 8 dpbusd (u8 weights x s8 activations, exact int32
 * sums) and a single float multiply-add with the 16 block scales. The weights' offset (8 or 128)
 * times each block's activation sum is taken off in integers. */
static inline __attribute__((always_inline)) void
dot_q8_group(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows, float *out,
             int q4)
{
    const int block_bytes = q4 ? (int)sizeof(block_q4_0) : (int)sizeof(block_q8_0);
    const int offset_shift = q4 ? 3 : 7; /* offsets 8 and 128 */
    __m512 acc[KERNEL_MAX_ROWS];
    for (int r = 0; r < n_rows; r++) acc[r] = _mm512_setzero_ps();
    int64_t n_blocks = n / QK8_0;
    for (int64_t g = 0; g < (n_blocks + 15) / 16; g++) {
        __m512i wq[8];
        group_weights(w, 16 * g, n_blocks, q4, wq);
        __m512 dw = group_weight_scales(w, 16 * g, n_blocks, block_bytes);
        for (int r = 0; r < n_rows; r++) {
            const block_q8_group *a = (const block_q8_group *)ACT_ROW(act, act_stride, r) + g;
            __m512i sums = _mm512_setzero_si512();
            for (int j = 0; j < 8; j++)
                sums = _mm512_dpbusd_epi32(sums, wq[j], _mm512_loadu_si512(a->qs + 64 * j));
            __m512i offsets = _mm512_slli_epi32(_mm512_loadu_si512(a->sum), offset_shift);
            __m512 scale = _mm512_mul_ps(dw, _mm512_loadu_ps(a->d));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(sums, offsets)), scale,
                                     acc[r]);
        }
    }
    for (int r = 0; r < n_rows; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
}

static void dot_q8_0_avx512(int64_t n, const void *w, const void *act, size_t act_stride,
                            int n_rows, float *out)
{
    CALL_WITH_ROW_COUNT(dot_q8_group, n, w, act, act_stride, n_rows, out, 0);
}

static void dot_q4_0_avx512(int64_t n, const void *w, const void *act, size_t act_stride,
                            int n_rows, float *out)
{
    CALL_WITH_ROW_COUNT(dot_q8_group, n, w, act, act_stride, n_rows, out, 1);
}

/* ---- q4_K / q6_K weights, q8_K activations ---- */

/* sum += scale16 * (q[2i] * a[2i] + q[2i+1] * a[2i+1]) per int32 lane pair; q unsigned <= 63. */
static inline __m512i dot_scaled(__m512i sum, __m512i q, __m512i a, __m512i scale16)
{
    return _mm512_dpwssd_epi32(sum, _mm512_maddubs_epi16(q, a), scale16);
}

/* int16 lane i of slice c (values 64c..64c+63) belongs to sub-block 2c + i / 16. */
static inline __m512i q4_K_sub_of_lane(int c)
{
    int16_t index[32];
    for (int i = 0; i < 32; i++) index[i] = (int16_t)(2 * c + i / 16);
    return _mm512_loadu_si512(index);
}

static inline __attribute__((always_inline)) void
dot_q4_K_rows(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows, float *out,
           int variant)
{
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    const __m512i sub_of_lane[4] = {q4_K_sub_of_lane(0), q4_K_sub_of_lane(1),
                                    q4_K_sub_of_lane(2), q4_K_sub_of_lane(3)};
    __m512 acc[KERNEL_MAX_ROWS];
    __m256 min_acc[KERNEL_MAX_ROWS];
    for (int r = 0; r < n_rows; r++) {
        acc[r] = _mm512_setzero_ps();
        min_acc[r] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_q4_K *wb = (const block_q4_K *)w + b;
        uint8_t scale_min[16];
        q4_K_unpack_scales(wb->scales, scale_min);
        __m512i scales16 = _mm512_castsi256_si512(
            _mm256_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)scale_min)));
        /* Each min twice, to meet the q8_K sums of the two 16-value halves of its sub-block. */
        __m128i mins8 = _mm_loadl_epi64((const __m128i *)(scale_min + 8));
        __m256i mins16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mins8, mins8));
        /* Slice c = values 64c..64c+63 = sub-blocks 2c (low nibbles of chunk c) and 2c + 1 (its
         * high nibbles), so it lines up with 64 contiguous activation quants. */
        __m512i q[4], scale[4];
        for (int c = 0; c < 4; c++) {
            __m256i chunk = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * c));
            q[c] = _mm512_and_si512(join256(chunk, _mm256_srli_epi16(chunk, 4)), nibble);
            scale[c] = _mm512_permutexvar_epi16(sub_of_lane[c], scales16);
        }
        float d = half(wb->d), dmin = half(wb->dmin);
        for (int r = 0; r < n_rows; r++) {
            const block_q8_K *xb = (const block_q8_K *)ACT_ROW(act, act_stride, r) + b;
            __m512i sums = _mm512_setzero_si512();
            for (int c = 0; c < 4; c++)
                sums = dot_scaled(sums, q[c], _mm512_loadu_si512(xb->qs + 64 * c), scale[c]);
            __m256i min_dot = _mm256_madd_epi16(
                _mm256_loadu_si256((const __m256i *)xb->bsums), mins16);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_set1_ps(xb->d * d), acc[r]);
            min_acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(min_dot), _mm256_set1_ps(xb->d * dmin),
                                         min_acc[r]);
        }
    }
    for (int r = 0; r < n_rows; r++)
        out[r] = _mm512_reduce_add_ps(acc[r]) -
                 _mm512_reduce_add_ps(_mm512_zextps256_ps512(min_acc[r]));
}

static void dot_q4_K_avx512(int64_t n, const void *w, const void *act, size_t act_stride,
                            int n_rows, float *out)
{
    CALL_WITH_ROW_COUNT(dot_q4_K_rows, n, w, act, act_stride, n_rows, out, 0);
}

static inline __attribute__((always_inline)) void
dot_q6_K_rows(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows, float *out,
           int variant)
{
    const __m512i nibble = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
    /* Per 256-bit half, how far each 2-bit field of qh moves to reach bits 4-5 (see quant.h):
     * slice 2h takes bits 0-1 (left 4) and 2-3 (left 2), slice 2h + 1 bits 4-5 and 6-7 (right 0
     * and 2). 16-bit shifts leak bits across bytes only into positions bits45 clears. */
    const __m512i left = join256(_mm256_set1_epi16(4), _mm256_set1_epi16(2));
    const __m512i right = join256(_mm256_set1_epi16(0), _mm256_set1_epi16(2));
    __m512i group_of_lane[4]; /* int16 lane i of slice v belongs to group 4v + i / 8 */
    for (int v = 0; v < 4; v++) {
        int16_t index[32];
        for (int i = 0; i < 32; i++) index[i] = (int16_t)(4 * v + i / 8);
        group_of_lane[v] = _mm512_loadu_si512(index);
    }
    __m512 acc[KERNEL_MAX_ROWS];
    for (int r = 0; r < n_rows; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_q6_K *wb = (const block_q6_K *)w + b;
        __m512i q[4], scale[4];
        for (int h = 0; h < 2; h++) {
            __m512i ql = _mm512_loadu_si512(wb->ql + 64 * h);
            __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(wb->qh + 32 * h)));
            q[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, nibble),
                                       _mm512_and_si512(_mm512_sllv_epi16(qh, left), bits45));
            q[2 * h + 1] =
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), nibble),
                                _mm512_and_si512(_mm512_srlv_epi16(qh, right), bits45));
        }
        __m256i group_scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb->scales));
        __m512i scales16 = _mm512_castsi256_si512(group_scales);
        for (int v = 0; v < 4; v++) scale[v] = _mm512_permutexvar_epi16(group_of_lane[v], scales16);
        float d = half(wb->d);
        for (int r = 0; r < n_rows; r++) {
            const block_q8_K *xb = (const block_q8_K *)ACT_ROW(act, act_stride, r) + b;
            __m512i sums = _mm512_setzero_si512();
            for (int v = 0; v < 4; v++)
                sums = dot_scaled(sums, q[v], _mm512_loadu_si512(xb->qs + 64 * v), scale[v]);
            /* The quants carry +32: take off 32 * scale_g * (sum of a over group g) for every
             * group, in integers so nothing cancels in float (eight int32 lanes suffice). */
            __m256i offsets = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xb->bsums),
                                                group_scales);
            sums = _mm512_sub_epi32(sums, _mm512_zextsi256_si512(_mm256_slli_epi32(offsets, 5)));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_set1_ps(xb->d * d), acc[r]);
        }
    }
    for (int r = 0; r < n_rows; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
}

static void dot_q6_K_avx512(int64_t n, const void *w, const void *act, size_t act_stride,
                            int n_rows, float *out)
{
    CALL_WITH_ROW_COUNT(dot_q6_K_rows, n, w, act, act_stride, n_rows, out, 0);
}

const kernels kernels_avx512 = {
    .name = "avx512",
    .path = KERNEL_AVX512,
    .f16 = {f16_to_float_avx2, copy_act_f32, dot_f16_avx2, FLOAT_ACT},
    .bf16 = {bf16_to_float_ref, copy_act_f32, dot_bf16_avx2, FLOAT_ACT},
    .q8_0 = {q8_0_to_float_ref, quantize_act_q8_group, dot_q8_0_avx512, Q8_GROUP_ACT},
    .q4_0 = {q4_0_to_float_ref, quantize_act_q8_group, dot_q4_0_avx512, Q8_GROUP_ACT},
    .q4_K = {q4_K_to_float_avx2, quantize_act_q8_K, dot_q4_K_avx512, Q8_K_ACT},
    .q6_K = {q6_K_to_float_avx2, quantize_act_q8_K, dot_q6_K_avx512, Q8_K_ACT},
};
