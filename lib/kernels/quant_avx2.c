/* AVX2 + FMA + F16C kernels (compiled with those flags only; called only after kernels.c checked
 * the CPU). Integer products use the maddubs idiom: |w| as unsigned bytes times a with w's sign,
 * pairs summed to int16 (never saturating: activations stay within +-127), then to int32. */
#include <immintrin.h>

#include "quant_ref.h"
#include "quant_simd.h"

static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float half(uint16_t h) { return _cvtsh_ss(h); }

/* ---- f16 / bf16 weights, float activations ---- */

static inline __m256 load_f16x8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 load_bf16x8(const uint16_t *p)
{
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

/* Independent accumulators per row: an FMA's latency is ~4 cycles, so one chain per row would
 * leave the FMA units idle; three per row still fit 4 rows in the 16 AVX2 registers. */
#define HALF_CHAINS 3

/* One body for both 16-bit float types; `bf16` is a constant at each call site. */
static inline __attribute__((always_inline)) void
dot_half_rows(int64_t n, const uint16_t *w, const void *act, size_t act_stride, int n_rows,
              float *out, int bf16)
{
    __m256 acc[KERNEL_MAX_ROWS][HALF_CHAINS];
    for (int r = 0; r < n_rows; r++)
        for (int c = 0; c < HALF_CHAINS; c++) acc[r][c] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 * HALF_CHAINS <= n; i += 8 * HALF_CHAINS) {
        __m256 wv[HALF_CHAINS];
        for (int c = 0; c < HALF_CHAINS; c++)
            wv[c] = bf16 ? load_bf16x8(w + i + 8 * c) : load_f16x8(w + i + 8 * c);
        for (int r = 0; r < n_rows; r++) {
            const float *x = ACT_ROW(act, act_stride, r);
            for (int c = 0; c < HALF_CHAINS; c++)
                acc[r][c] = _mm256_fmadd_ps(wv[c], _mm256_loadu_ps(x + i + 8 * c), acc[r][c]);
        }
    }
    for (; i + 8 <= n; i += 8) {
        __m256 wv = bf16 ? load_bf16x8(w + i) : load_f16x8(w + i);
        for (int r = 0; r < n_rows; r++) {
            const float *x = ACT_ROW(act, act_stride, r);
            acc[r][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), acc[r][0]);
        }
    }
    for (int r = 0; r < n_rows; r++) {
        const float *x = ACT_ROW(act, act_stride, r);
        __m256 total = acc[r][0];
        for (int c = 1; c < HALF_CHAINS; c++) total = _mm256_add_ps(total, acc[r][c]);
        float sum = hsum_ps(total);
        for (int64_t k = i; k < n; k++) sum += (bf16 ? bf16_to_f32(w[k]) : half(w[k])) * x[k];
        out[r] = sum;
    }
}

void dot_f16_avx2(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows,
                  float *out)
{
    CALL_WITH_ROW_COUNT(dot_half_rows, n, w, act, act_stride, n_rows, out, 0);
}

void dot_bf16_avx2(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows,
                   float *out)
{
    CALL_WITH_ROW_COUNT(dot_half_rows, n, w, act, act_stride, n_rows, out, 1);
}

void f16_to_float_avx2(const void *w, float *y, int64_t n)
{
    const uint16_t *h = w;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_f16x8(h + i));
    for (; i < n; i++) y[i] = half(h[i]);
}

/* ---- q8_0 / q4_0 weights, q8_0 activations ---- */

static inline __m256i low_nibbles(__m256i bytes)
{
    return _mm256_and_si256(bytes, _mm256_set1_epi8(0x0F));
}

/* The 32 quants of a q4_0 block as signed bytes q - 8, in value order. */
static inline __m256i q4_0_values(const uint8_t *qs)
{
    __m128i packed = _mm_loadu_si128((const __m128i *)qs);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_sub_epi8(low_nibbles(both), _mm256_set1_epi8(8));
}

/* Eight int32 partial sums of w[i] * a[i]; |a| <= 127, w any int8 (|-128| is 128 unsigned). */
static inline __m256i dot_i8(__m256i w, __m256i a)
{
    __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

static inline __attribute__((always_inline)) void
dot_q8_0_partner(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows,
                 float *out, int q4)
{
    __m256 acc[KERNEL_MAX_ROWS];
    for (int r = 0; r < n_rows; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK8_0; b++) {
        float dw;
        __m256i wq;
        if (q4) {
            const block_q4_0 *wb = (const block_q4_0 *)w + b;
            dw = half(wb->d);
            wq = q4_0_values(wb->qs);
        } else {
            const block_q8_0 *wb = (const block_q8_0 *)w + b;
            dw = half(wb->d);
            wq = _mm256_loadu_si256((const __m256i *)wb->qs);
        }
        for (int r = 0; r < n_rows; r++) {
            const block_q8_0 *xb = (const block_q8_0 *)ACT_ROW(act, act_stride, r) + b;
            __m256i sums = dot_i8(wq, _mm256_loadu_si256((const __m256i *)xb->qs));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(dw * half(xb->d)),
                                     acc[r]);
        }
    }
    for (int r = 0; r < n_rows; r++) out[r] = hsum_ps(acc[r]);
}

static void dot_q8_0_avx2(int64_t n, const void *w, const void *act, size_t act_stride,
                          int n_rows, float *out)
{
    CALL_WITH_ROW_COUNT(dot_q8_0_partner, n, w, act, act_stride, n_rows, out, 0);
}

static void dot_q4_0_avx2(int64_t n, const void *w, const void *act, size_t act_stride,
                          int n_rows, float *out)
{
    CALL_WITH_ROW_COUNT(dot_q8_0_partner, n, w, act, act_stride, n_rows, out, 1);
}

/* ---- q4_K / q6_K weights, q8_K activations ---- */

/* The 256 quants of a q4_K block as 8 vectors of unsigned 0..15, one per sub-block. */
static inline void q4_K_values(const block_q4_K *wb, __m256i q[8])
{
    for (int c = 0; c < 4; c++) {
        __m256i bytes = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * c));
        q[2 * c] = low_nibbles(bytes);
        q[2 * c + 1] = low_nibbles(_mm256_srli_epi16(bytes, 4));
    }
}

/* The 256 quants of a q6_K block as 8 vectors of unsigned 0..63 (offset 32 not removed), vector
 * v holding values 32v..32v+31 (see the layout in quant.h). */
static inline void q6_K_values(const block_q6_K *wb, __m256i q[8])
{
    const __m256i bits45 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; h++) {
        __m256i ql0 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h));
        __m256i ql1 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(wb->qh + 32 * h));
        /* Move each 2-bit field of qh to bits 4-5 of its byte; 16-bit shifts leak bits across
         * bytes only into positions the mask clears. */
        q[4 * h] = _mm256_or_si256(low_nibbles(ql0),
                                   _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45));
        q[4 * h + 1] = _mm256_or_si256(low_nibbles(ql1),
                                       _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45));
        q[4 * h + 2] = _mm256_or_si256(low_nibbles(_mm256_srli_epi16(ql0, 4)),
                                       _mm256_and_si256(qh, bits45));
        q[4 * h + 3] = _mm256_or_si256(low_nibbles(_mm256_srli_epi16(ql1, 4)),
                                       _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45));
    }
}

static inline __attribute__((always_inline)) void
dot_q4_K_rows(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows, float *out,
           int variant)
{
    __m256 acc[KERNEL_MAX_ROWS], min_acc[KERNEL_MAX_ROWS];
    for (int r = 0; r < n_rows; r++) acc[r] = min_acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_q4_K *wb = (const block_q4_K *)w + b;
        uint8_t scale_min[16];
        q4_K_unpack_scales(wb->scales, scale_min);
        /* Each min twice, to meet the q8_K sums of the two 16-value halves of its sub-block. */
        __m128i mins8 = _mm_loadl_epi64((const __m128i *)(scale_min + 8));
        __m256i mins16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mins8, mins8));
        __m256i q[8], scale[8];
        q4_K_values(wb, q);
        for (int s = 0; s < 8; s++) scale[s] = _mm256_set1_epi16(scale_min[s]);
        float d = half(wb->d), dmin = half(wb->dmin);
        for (int r = 0; r < n_rows; r++) {
            const block_q8_K *xb = (const block_q8_K *)ACT_ROW(act, act_stride, r) + b;
            __m256i sums = _mm256_setzero_si256();
            for (int s = 0; s < 8; s++) {
                __m256i a = _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * s));
                __m256i pairs = _mm256_maddubs_epi16(q[s], a);
                sums = _mm256_add_epi32(sums, _mm256_madd_epi16(pairs, scale[s]));
            }
            __m256i min_dot = _mm256_madd_epi16(
                _mm256_loadu_si256((const __m256i *)xb->bsums), mins16);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(xb->d * d), acc[r]);
            min_acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(min_dot), _mm256_set1_ps(xb->d * dmin),
                                         min_acc[r]);
        }
    }
    for (int r = 0; r < n_rows; r++) out[r] = hsum_ps(_mm256_sub_ps(acc[r], min_acc[r]));
}

static void dot_q4_K_avx2(int64_t n, const void *w, const void *act, size_t act_stride,
                          int n_rows, float *out)
{
    CALL_WITH_ROW_COUNT(dot_q4_K_rows, n, w, act, act_stride, n_rows, out, 0);
}

static inline __attribute__((always_inline)) void
dot_q6_K_rows(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows, float *out,
           int variant)
{
    __m256 acc[KERNEL_MAX_ROWS];
    for (int r = 0; r < n_rows; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_q6_K *wb = (const block_q6_K *)w + b;
        __m256i q[8], scale[8];
        q6_K_values(wb, q);
        for (int v = 0; v < 8; v++) /* groups 2v, 2v + 1 in the two 128-bit lanes */
            scale[v] = _mm256_set_m128i(_mm_set1_epi16(wb->scales[2 * v + 1]),
                                        _mm_set1_epi16(wb->scales[2 * v]));
        __m256i group_scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb->scales));
        float d = half(wb->d);
        for (int r = 0; r < n_rows; r++) {
            const block_q8_K *xb = (const block_q8_K *)ACT_ROW(act, act_stride, r) + b;
            __m256i sums = _mm256_setzero_si256();
            for (int v = 0; v < 8; v++) {
                __m256i a = _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * v));
                __m256i pairs = _mm256_maddubs_epi16(q[v], a);
                sums = _mm256_add_epi32(sums, _mm256_madd_epi16(pairs, scale[v]));
            }
            /* The quants carry +32: take off 32 * scale_g * (sum of a over group g) for every
             * group, in integers so nothing cancels in float. */
            __m256i offsets = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xb->bsums),
                                                group_scales);
            sums = _mm256_sub_epi32(sums, _mm256_slli_epi32(offsets, 5));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(xb->d * d), acc[r]);
        }
    }
    for (int r = 0; r < n_rows; r++) out[r] = hsum_ps(acc[r]);
}

static void dot_q6_K_avx2(int64_t n, const void *w, const void *act, size_t act_stride,
                          int n_rows, float *out)
{
    CALL_WITH_ROW_COUNT(dot_q6_K_rows, n, w, act, act_stride, n_rows, out, 0);
}

/* ---- dequantisation for the GEMM route ---- */

/* 32 unsigned bytes -> four vectors of 8 floats, in order. */
static inline void u8x32_to_float(__m256i q, __m256 f[4])
{
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    f[0] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
    f[1] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)));
    f[2] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
    f[3] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)));
}

void q4_K_to_float_avx2(const void *w, float *y, int64_t n)
{
    const block_q4_K *wb = w;
    for (int64_t b = 0; b < n / QK_K; b++, wb++, y += QK_K) {
        uint8_t scale_min[16];
        q4_K_unpack_scales(wb->scales, scale_min);
        __m256i q[8];
        q4_K_values(wb, q);
        float d = half(wb->d), dmin = half(wb->dmin);
        for (int s = 0; s < 8; s++) {
            __m256 scale = _mm256_set1_ps(d * scale_min[s]);
            __m256 offset = _mm256_set1_ps(dmin * scale_min[8 + s]);
            __m256 f[4];
            u8x32_to_float(q[s], f);
            for (int k = 0; k < 4; k++)
                _mm256_storeu_ps(y + 32 * s + 8 * k, _mm256_fmsub_ps(f[k], scale, offset));
        }
    }
}

void q6_K_to_float_avx2(const void *w, float *y, int64_t n)
{
    const block_q6_K *wb = w;
    for (int64_t b = 0; b < n / QK_K; b++, wb++, y += QK_K) {
        __m256i q[8];
        q6_K_values(wb, q);
        float d = half(wb->d);
        for (int v = 0; v < 8; v++) {
            __m256 f[4];
            u8x32_to_float(q[v], f);
            for (int k = 0; k < 4; k++) { /* values 32v + 8k.. are in group 2v + k / 2 */
                __m256 scale = _mm256_set1_ps(d * wb->scales[2 * v + k / 2]);
                __m256 value = _mm256_sub_ps(f[k], _mm256_set1_ps(32.0f));
                _mm256_storeu_ps(y + 32 * v + 8 * k, _mm256_mul_ps(value, scale));
            }
        }
    }
}

const kernels kernels_avx2 = {
    .name = "avx2",
    .path = KERNEL_AVX2,
    .f16 = {f16_to_float_avx2, copy_act_f32, dot_f16_avx2, FLOAT_ACT},
    .bf16 = {bf16_to_float_ref, copy_act_f32, dot_bf16_avx2, FLOAT_ACT},
    .q8_0 = {q8_0_to_float_ref, quantize_act_q8_0, dot_q8_0_avx2, Q8_0_ACT},
    .q4_0 = {q4_0_to_float_ref, quantize_act_q8_0, dot_q4_0_avx2, Q8_0_ACT},
    .q4_K = {q4_K_to_float_avx2, quantize_act_q8_K, dot_q4_K_avx2, Q8_K_ACT},
    .q6_K = {q6_K_to_float_avx2, quantize_act_q8_K, dot_q6_K_avx2, Q8_K_ACT},
};
