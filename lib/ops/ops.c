#include "ops.h"

#include <math.h>
#include <string.h>

/* The SIMD_CLONES loops are written so the compiler vectorises them: no calls into libm, branch-
 * free element functions, sums in explicit lanes. */

/* exp(x) (Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2, degree-6 polynomial in r, 2^n built in
 * the exponent bits); about 1 ulp. x is clamped to [-87.3, 88], so below -87.3 the result stays at
 * the smallest normal magnitude instead of going subnormal, which no caller can tell from 0, and
 * above 88 at e^88 instead of infinity (SiLU's x / (1 + e^-x) then gives about 0 for x < -88, as
 * it should, rather than -0). */
static inline float exp_fast(float x)
{
    x = x < -87.3f ? -87.3f : x > 88.0f ? 88.0f : x;
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float n = (x * 1.44269504088896341f + round_magic) - round_magic;
    float r = x - n * 0.693145751953125f - n * 1.428606765330187e-6f; /* ln2 in two parts */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* A NaN x stays NaN through p; only the float-to-int conversion must not see it. */
    float n_finite = n == n ? n : 0.0f;
    int32_t bits = ((int32_t)n_finite + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* erfc(z) for z >= 0 with relative error below 1.2e-7 (the Chebyshev fit of Numerical Recipes'
 * erfcc): one exponential and one division, no branches. */
static inline float erfc_nonnegative(float z)
{
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return t * exp_fast(p - z * z);
}

/* Sums over SUM_LANES interleaved partial sums (one AVX-512 register), combined in a fixed order:
 * the result depends only on the values, never on the address alignment a vectorising compiler
 * would otherwise peel for, so equal rows in different buffers give equal results (beam rows and
 * single rows must agree). */
#define SUM_LANES 16
typedef float sum_lanes __attribute__((vector_size(SUM_LANES * sizeof(float))));
typedef float sum_lanes_at __attribute__((vector_size(SUM_LANES * sizeof(float)), aligned(4),
                                          may_alias));

static inline float lanes_total(const sum_lanes *acc)
{
    float sum = 0.0f;
    for (int l = 0; l < SUM_LANES; l++) sum += (*acc)[l];
    return sum;
}

/* sum of x[i] */
static inline float sum_of(const float *x, int64_t n)
{
    sum_lanes acc = {0};
    int64_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES) acc += *(const sum_lanes_at *)(x + i);
    float sum = lanes_total(&acc);
    for (; i < n; i++) sum += x[i];
    return sum;
}

/* sum of (x[i] - mean)^2 */
static inline float squared_deviations(const float *x, int64_t n, float mean)
{
    sum_lanes acc = {0};
    int64_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES) {
        sum_lanes d = *(const sum_lanes_at *)(x + i) - mean;
        acc += d * d;
    }
    float sum = lanes_total(&acc);
    for (; i < n; i++) sum += (x[i] - mean) * (x[i] - mean);
    return sum;
}

/* Row statistics in float lanes: the partial sums keep the rounding error of rows up to a few
 * thousand values far below the 1e-4 the reference comparison allows. */
SIMD_CLONES void layer_norm(float *out, const float *x, int64_t rows, int64_t n,
                            const float *weight, const float *bias, float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * n;
        float *dst = out + r * n;
        float mean = sum_of(row, n) / (float)n;
        float inv_std = 1.0f / sqrtf(squared_deviations(row, n, mean) / (float)n + eps);
        for (int64_t i = 0; i < n; i++) dst[i] = (row[i] - mean) * inv_std * weight[i];
        if (bias)
            for (int64_t i = 0; i < n; i++) dst[i] += bias[i];
    }
}

void rms_norm(float *out, const float *x, int64_t rows, int64_t n, const float *weight, float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * n;
        float *dst = out + r * n;
        double sum_sq = 0.0;
        for (int64_t i = 0; i < n; i++) sum_sq += (double)row[i] * row[i];
        float scale = (float)(1.0 / sqrt(sum_sq / (double)n + eps));
        for (int64_t i = 0; i < n; i++) dst[i] = weight[i] * (row[i] * scale);
    }
}

/* 1 + erf(x / sqrt 2) is 2 - erfc(|x| / sqrt 2) for x >= 0 and erfc(|x| / sqrt 2) below: the
 * negative side keeps full relative accuracy where GELU's output is tiny. */
SIMD_CLONES void gelu_erf(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float e = erfc_nonnegative(fabsf(x[i]) * (float)M_SQRT1_2);
        x[i] = 0.5f * x[i] * (x[i] >= 0.0f ? 2.0f - e : e);
    }
}

SIMD_CLONES void silu_mul(float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + exp_fast(-gate[i])) * up[i];
}

/* The largest of x[0..n), n >= 1, in 16 explicit lanes (an omp simd max reduction is not
 * vectorised by clang 14, which then warns). A NaN is kept only where it came first, as a plain
 * running max keeps it. */
static inline float max_of(const float *x, int64_t n)
{
    float lane[16], max = x[0];
    for (int l = 0; l < 16; l++) lane[l] = x[0];
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    for (int l = 0; l < 16; l++) max = lane[l] > max ? lane[l] : max;
    return max;
}

SIMD_CLONES void softmax(float *x, int64_t n)
{
    float max = max_of(x, n);
    for (int64_t i = 0; i < n; i++) x[i] = exp_fast(x[i] - max);
    float inv = 1.0f / sum_of(x, n);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void log_softmax(float *x, int64_t n)
{
    float max = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += exp((double)(x[i] - max));
    float log_sum = (float)log(sum);
    for (int64_t i = 0; i < n; i++) x[i] = (x[i] - max) - log_sum;
}

void add(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

/* f32_to_bf16 (round to nearest even, NaN kept quiet) over an array, vectorised. */
SIMD_CLONES void floats_to_bf16(uint16_t *out, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
        out[i] = (uint16_t)((bits & 0x7fffffffu) > 0x7f800000u ? (bits >> 16) | 0x40u : rounded);
    }
}
