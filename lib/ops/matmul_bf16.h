/* bf16 weights times float activations through oneDNN (internal to lib/ops/matmul.c). */
#ifndef R2GEN_OPS_MATMUL_BF16_H
#define R2GEN_OPS_MATMUL_BF16_H

#include "matmul.h"

/* y[m][n_out] = x[m][n_in] · Wᵀ for bf16 W, x rounded to bf16, f32 accumulation; no bias. */
r2gen_status matmul_bf16_onednn(const compute *cpu, float *y, const float *x, int64_t m,
                                const tensor *w, error *err);

#endif
