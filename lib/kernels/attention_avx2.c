/* The attention kernels (see attention.h) with AVX2 + FMA + F16C: compiled with those flags and
 * reached only through attention_kernels_select(), which checks the CPU.
 *
 * Both keep their sums in registers for a compile-time number of rows and entry type: scores take
 * a few keys at a time against every row (each key loaded once per 8 values, each query chunk
 * once for the keys), mix a band of output columns for every row while it walks a block of values
 * held in L1. */
#include <immintrin.h>

#include "attention.h"
#include "core/tensor.h"
#include "quant_simd.h"

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* Elements i .. i + 7 (F16, a compile-time constant: fp16, else float) of a cache pool. */
static inline __attribute__((always_inline)) __m256 load8(const void *entries, size_t i, int F16)
{
    if (F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)entries + i)));
    return _mm256_loadu_ps((const float *)entries + i);
}

static inline __attribute__((always_inline)) float load1(const void *entries, size_t i, int F16)
{
    return F16 ? fp16_to_f32(((const uint16_t *)entries)[i]) : ((const float *)entries)[i];
}

/* KEYS keys (slots[0 .. KEYS)) against ROWS query rows. */
static inline __attribute__((always_inline)) void
score_keys(const void *keys, int F16, int head_dim, const int32_t *slots, const float *q,
           size_t q_stride, int ROWS, int KEYS, float scale, float *scores, size_t scores_stride)
{
    size_t key[4];
    __m256 acc[4][4];
    for (int k = 0; k < KEYS; k++) key[k] = (size_t)slots[k] * head_dim;
    for (int r = 0; r < ROWS; r++)
        for (int k = 0; k < KEYS; k++) acc[r][k] = _mm256_setzero_ps();
    int d = 0;
    for (; d + 8 <= head_dim; d += 8) {
        __m256 kv[4];
        for (int k = 0; k < KEYS; k++) kv[k] = load8(keys, key[k] + d, F16);
        for (int r = 0; r < ROWS; r++) {
            __m256 qv = _mm256_loadu_ps(q + (size_t)r * q_stride + d);
            for (int k = 0; k < KEYS; k++) acc[r][k] = _mm256_fmadd_ps(kv[k], qv, acc[r][k]);
        }
    }
    for (int r = 0; r < ROWS; r++)
        for (int k = 0; k < KEYS; k++) {
            const float *qr = q + (size_t)r * q_stride;
            float sum = hsum(acc[r][k]);
            for (int t = d; t < head_dim; t++) sum += load1(keys, key[k] + t, F16) * qr[t];
            scores[(size_t)r * scores_stride + k] = scale * sum;
        }
}

/* 4 keys at a time for 1-2 rows, 2 for 3-4 (so the sums stay within the 16 registers). */
static inline __attribute__((always_inline)) void
scores_rows(const void *keys, int F16, int head_dim, const int32_t *slots, int n, const float *q,
            size_t q_stride, int ROWS, float scale, float *scores, size_t scores_stride)
{
    const int KEYS = ROWS <= 2 ? 4 : 2;
    int j = 0;
    for (; j + KEYS <= n; j += KEYS)
        score_keys(keys, F16, head_dim, slots + j, q, q_stride, ROWS, KEYS, scale, scores + j,
                   scores_stride);
    for (; j < n; j++)
        score_keys(keys, F16, head_dim, slots + j, q, q_stride, ROWS, 1, scale, scores + j,
                   scores_stride);
}

#define SCORES_ROWS(F16, ROWS)                                                                     \
    scores_rows(keys, F16, head_dim, slots, n, q, q_stride, ROWS, scale, scores, scores_stride)

static void scores_avx2(const void *keys, int f16, int head_dim, const int32_t *slots, int n,
                        const float *q, size_t q_stride, int n_rows, float scale, float *scores,
                        size_t scores_stride)
{
    WITH_FLAG_AND_ROWS(SCORES_ROWS, f16, n_rows)
}

/* Output columns d0 .. d0 + 8 * BANDS of ROWS rows over values j0 .. j1. */
static inline __attribute__((always_inline)) void
mix_band(const void *values, int F16, int head_dim, const int32_t *slots, int j0, int j1,
         const float *p, size_t p_stride, int ROWS, int BANDS, int d0, float *out, size_t out_stride)
{
    __m256 acc[4][4];
    for (int r = 0; r < ROWS; r++)
        for (int b = 0; b < BANDS; b++)
            acc[r][b] = _mm256_loadu_ps(out + (size_t)r * out_stride + d0 + 8 * b);
    for (int j = j0; j < j1; j++) {
        size_t value = (size_t)slots[j] * head_dim + d0;
        __m256 vv[4];
        for (int b = 0; b < BANDS; b++) vv[b] = load8(values, value + 8 * b, F16);
        for (int r = 0; r < ROWS; r++) {
            __m256 pj = _mm256_broadcast_ss(p + (size_t)r * p_stride + j);
            for (int b = 0; b < BANDS; b++) acc[r][b] = _mm256_fmadd_ps(pj, vv[b], acc[r][b]);
        }
    }
    for (int r = 0; r < ROWS; r++)
        for (int b = 0; b < BANDS; b++)
            _mm256_storeu_ps(out + (size_t)r * out_stride + d0 + 8 * b, acc[r][b]);
}

/* Values go in blocks of MIX_BLOCK (4 KiB of fp16 at head_dim 128), each block read from memory
 * once and then walked from L1 by every band of output columns: bands of 32 columns for 1-2
 * rows, 16 for 3-4, then 8, then the scalar rest. */
#define MIX_BLOCK 16

static inline __attribute__((always_inline)) void
mix_rows(const void *values, int F16, int head_dim, const int32_t *slots, int n, const float *p,
         size_t p_stride, int ROWS, float *out, size_t out_stride)
{
    const int BANDS = ROWS <= 2 ? 4 : 2;
    for (int j0 = 0; j0 < n; j0 += MIX_BLOCK) {
        int j1 = j0 + MIX_BLOCK < n ? j0 + MIX_BLOCK : n, d = 0;
        for (; d + 8 * BANDS <= head_dim; d += 8 * BANDS)
            mix_band(values, F16, head_dim, slots, j0, j1, p, p_stride, ROWS, BANDS, d, out,
                     out_stride);
        for (; d + 8 <= head_dim; d += 8)
            mix_band(values, F16, head_dim, slots, j0, j1, p, p_stride, ROWS, 1, d, out, out_stride);
        for (; d < head_dim; d++)
            for (int j = j0; j < j1; j++) {
                float v = load1(values, (size_t)slots[j] * head_dim + d, F16);
                for (int r = 0; r < ROWS; r++) out[(size_t)r * out_stride + d] += p[(size_t)r * p_stride + j] * v;
            }
    }
}

#define MIX_ROWS(F16, ROWS) mix_rows(values, F16, head_dim, slots, n, p, p_stride, ROWS, out, out_stride)

static void mix_avx2(const void *values, int f16, int head_dim, const int32_t *slots, int n,
                     const float *p, size_t p_stride, int n_rows, float *out, size_t out_stride)
{
    WITH_FLAG_AND_ROWS(MIX_ROWS, f16, n_rows)
}

const attention_kernels attention_avx2 = {scores_avx2, mix_avx2};
