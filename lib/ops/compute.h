/* How a context computes: its thread budget and matrix-product backend. One of these lives in
 * each r2gen_ctx and is passed down to every stage, so nothing consults global state. */
#ifndef R2GEN_OPS_COMPUTE_H
#define R2GEN_OPS_COMPUTE_H

typedef enum gemm_backend {
    GEMM_ONEDNN = 0,   /* default: oneDNN sgemm / bf16 matmul */
    GEMM_OPENBLAS = 1, /* OpenBLAS cblas_sgemm */
} gemm_backend;

typedef struct compute {
    int n_threads;        /* >= 1; every OpenMP region, oneDNN and OpenBLAS call uses exactly this */
    gemm_backend backend;
    int allow_bf16;       /* use bf16 products for bf16 weights when the CPU has AVX512_BF16 */
} compute;

#endif
