/* The one matrix-product entry point of the library. Every Linear layer of every stage calls it.
 *
 *   y[m][n_out] = sum_k x[m][k] * W[n_out][k]  (+ bias[n_out])
 *
 * W is a weight tensor with ne = {n_in, n_out} of any supported type (f32, f16, bf16, q8_0, q4_0,
 * q4_K, q6_K); x and y are dense row-major float32 with leading dimensions n_in and n_out.
 * Small m (decode steps, a few beams) runs the project's own row kernels, which stream every
 * weight row once for all m rows of x; large m runs as a real GEMM (oneDNN or OpenBLAS, on
 * dequantised tiles for non-f32 weights). */
#ifndef R2GEN_OPS_MATMUL_H
#define R2GEN_OPS_MATMUL_H

#include <stdint.h>

#include "core/error.h"
#include "core/tensor.h"
#include "compute.h"

r2gen_status matmul(const compute *cpu, float *y, const float *x, int64_t m, const tensor *w,
                    const float *bias, error *err);

/* Plain dense product of two float32 row-major matrices (for attention scores and the like):
 * C[m][n] = alpha * A[m][k] · op(B) + beta * C, with B given as [n][k] when b_transposed, else
 * [k][n]. Leading dimensions are explicit so sub-matrices (one head of a wider row) can be used. */
void gemm_f32(const compute *cpu, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, int b_transposed, float beta, float *c,
              int64_t ldc);

#endif
