/* Element-wise and row-wise operations of the transformer layers. All float32, row-major;
 * `out` may equal `x` (in place) unless stated. */
#ifndef R2GEN_OPS_OPS_H
#define R2GEN_OPS_OPS_H

#include <stdint.h>

/* Marks a function to be compiled for AVX-512, for AVX2+FMA and for baseline x86-64, the loader
 * picking the best one the CPU runs: vectorised loops without special build flags. GCC only:
 * clang 14 leaves the clones' symbols undefined, and the ifunc resolvers run before
 * ThreadSanitizer's runtime is ready, so those builds get the baseline version. */
#if defined(__clang__) || defined(__SANITIZE_THREAD__)
#define SIMD_CLONES
#else
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif

/* LayerNorm over each row of n values: (x - mean) / sqrt(var + eps) * weight + bias,
 * mean and variance as PyTorch computes them (biased variance). */
void layer_norm(float *out, const float *x, int64_t rows, int64_t n, const float *weight,
                const float *bias, float eps);

/* RMSNorm (LLaMA): x / sqrt(mean(x^2) + eps) * weight. */
void rms_norm(float *out, const float *x, int64_t rows, int64_t n, const float *weight, float eps);

void gelu_erf(float *x, int64_t n);               /* exact GELU: 0.5 x (1 + erf(x / sqrt 2)) */
void silu_mul(float *gate, const float *up, int64_t n); /* gate = silu(gate) * up */
void softmax(float *x, int64_t n);                 /* in place, max-subtracted */
void log_softmax(float *x, int64_t n);             /* in place */
void add(float *y, const float *x, int64_t n);     /* y += x */
void floats_to_bf16(uint16_t *out, const float *x, int64_t n); /* f32_to_bf16 of each value */

#endif
