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

/* ---- q8_0 / q4_0 weights, q8_0 activations ---- */

/* The 32 quants of weight block b as signed bytes (q4_0: q - 8, in value order). */
static inline __m256i block32_values(const void *w, int64_t b, int q4, float *d)
{
    if (q4) {
        const block_q4_0 *wb = (const block_q4_0 *)w + b;
        __m128i packed = _mm_loadu_si128((const __m128i *)wb->qs);
        __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
        *d = half(wb->d);
        return _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0F)),
                               _mm256_set1_epi8(8));
    }
    const block_q8_0 *wb = (const block_q8_0 *)w + b;
    *d = half(wb->d);
    return _mm256_loadu_si256((const __m256i *)wb->qs);
}

/* The 32 activation quants of block b of one row, and their scale. */
static inline __m256i act32(const void *row, int64_t b, float *d)
{
    const block_q8_0 *xb = (const block_q8_0 *)row + b;
    *d = half(xb->d);
    return _mm256_loadu_si256((const __m256i *)xb->qs);
}

/* Sixteen int32 partial sums of w[i] * a[i] (four products each); |a| <= 127, w any int8. */
static inline __m512i dot_i8x64(__m512i w, __m512i a)
{
    __m512i a_signed = _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(w), _mm512_setzero_si512(), a);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), a_signed);
}

static inline __m512i join256(__m256i lo, __m256i hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline __m512 join_ps(float lo, float hi)
{
    return _mm512_castsi512_ps(
        join256(_mm256_castps_si256(_mm256_set1_ps(lo)), _mm256_castps_si256(_mm256_set1_ps(hi))));
}

static inline __attribute__((always_inline)) void
dot_q8_0_partner(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows,
                 float *out, int q4)
{
    __m512 acc[KERNEL_MAX_ROWS];
    for (int r = 0; r < n_rows; r++) acc[r] = _mm512_setzero_ps();
    int64_t n_blocks = n / QK8_0;
    /* Two blocks per step; an odd last block runs with a zero partner of scale 0. */
    for (int64_t b = 0; b < n_blocks; b += 2) {
        int pair = b + 1 < n_blocks;
        float dw0, dw1 = 0.0f;
        __m512i wq = join256(block32_values(w, b, q4, &dw0),
                             pair ? block32_values(w, b + 1, q4, &dw1) : _mm256_setzero_si256());
        for (int r = 0; r < n_rows; r++) {
            const void *row = ACT_ROW(act, act_stride, r);
            float da0, da1 = 0.0f;
            __m512i a = join256(act32(row, b, &da0),
                                pair ? act32(row, b + 1, &da1) : _mm256_setzero_si256());
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_i8x64(wq, a)),
                                     join_ps(dw0 * da0, dw1 * da1), acc[r]);
        }
    }
    for (int r = 0; r < n_rows; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
}

static void dot_q8_0_avx512(int64_t n, const void *w, const void *act, size_t act_stride,
                            int n_rows, float *out)
{
    CALL_WITH_ROW_COUNT(dot_q8_0_partner, n, w, act, act_stride, n_rows, out, 0);
}

static void dot_q4_0_avx512(int64_t n, const void *w, const void *act, size_t act_stride,
                            int n_rows, float *out)
{
    CALL_WITH_ROW_COUNT(dot_q8_0_partner, n, w, act, act_stride, n_rows, out, 1);
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
    .q8_0 = {q8_0_to_float_ref, quantize_act_q8_0, dot_q8_0_avx512, Q8_0_ACT},
    .q4_0 = {q4_0_to_float_ref, quantize_act_q8_0, dot_q4_0_avx512, Q8_0_ACT},
    .q4_K = {q4_K_to_float_avx2, quantize_act_q8_K, dot_q4_K_avx512, Q8_K_ACT},
    .q6_K = {q6_K_to_float_avx2, quantize_act_q8_K, dot_q6_K_avx512, Q8_K_ACT},
};
