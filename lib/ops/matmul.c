/* Matrix products. Three routes, chosen by weight type and the number of activation rows:
 *
 *  - f32 weights: one sgemm (oneDNN or OpenBLAS) for any m.
 *  - integer-quantised weights (q8_0, q4_0, q4_K, q6_K) at any m, and f16/bf16 weights with
 *    m <= MATMUL_ROW_KERNEL_MAX_M (decode steps, a few beams): x is quantised once to the
 *    weights' dot partner format, then the weight rows are split across the threads and each row
 *    is streamed once for all m activation rows by the kernels of lib/kernels (KERNEL_MAX_ROWS at
 *    a time, the row staying in L1). For a few rows this is bound by memory bandwidth; for a
 *    prefill the integer dot products (VNNI) outrun an sgemm on dequantised weights.
 *  - f16/bf16 weights, larger m (the Swin encoder): each thread dequantises panels of
 *    weight rows into its own float scratch and multiplies them with a single-threaded sgemm;
 *    bf16 weights with cpu->allow_bf16 on an AVX512_BF16 CPU go to oneDNN's bf16 matmul instead.
 *
 * Threads. Every parallel region here names cpu->n_threads explicitly. oneDNN (OpenMP build) sizes
 * its parallel regions from the calling thread's nthreads ICV, so that ICV is set around each
 * oneDNN call and restored afterwards; inside our own parallel regions it is set to 1, so oneDNN
 * never nests a second team under ours. The OpenBLAS build is the pthreads one, whose thread count
 * is process-global: it is set likewise around each call (contexts that use OpenBLAS from several
 * application threads at once share that setting; oneDNN has no such limitation). */
#include "matmul.h"

#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h"
#include "matmul_bf16.h"

/* Up to this many activation rows the row kernels stream the weights once; past it a GEMM on
 * dequantised panels does fewer operations per weight byte read. */
#define MATMUL_ROW_KERNEL_MAX_M 8
/* Weight rows per work item of the row kernels: 16 rows of 4096 q4_K values are 37 KiB, so the
 * ~250-1000 items of a layer cost little to hand out, yet a thread slowed by another process on
 * its core just takes fewer of them (a static split would make the other thread wait). */
#define MATMUL_ROWS_PER_ITEM 16
/* Weight rows dequantised at a time by one thread in the GEMM route: with n_in = 4096 this is a
 * 2 MiB float panel, the right order for an L2-resident sgemm operand. */
#define MATMUL_PANEL_ROWS 128

/* Row-major C = alpha * A · op(B) + beta * C with the thread count the backend has now. */
static dnnl_status_t sgemm_as_set(gemm_backend backend, int64_t m, int64_t n, int64_t k,
                                  float alpha, const float *a, int64_t lda, const float *b,
                                  int64_t ldb, int b_transposed, float beta, float *c, int64_t ldc)
{
    if (backend == GEMM_OPENBLAS) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, b_transposed ? CblasTrans : CblasNoTrans,
                    (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb,
                    beta, c, (blasint)ldc);
        return dnnl_success;
    }
    return dnnl_sgemm('N', b_transposed ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* The same on exactly `n_threads` threads, leaving the thread settings as they were. */
static dnnl_status_t sgemm(gemm_backend backend, int n_threads, int64_t m, int64_t n, int64_t k,
                           float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                           int b_transposed, float beta, float *c, int64_t ldc)
{
    int saved = backend == GEMM_OPENBLAS ? openblas_get_num_threads() : omp_get_max_threads();
    if (backend == GEMM_OPENBLAS)
        openblas_set_num_threads(n_threads);
    else
        omp_set_num_threads(n_threads);
    dnnl_status_t status =
        sgemm_as_set(backend, m, n, k, alpha, a, lda, b, ldb, b_transposed, beta, c, ldc);
    if (backend == GEMM_OPENBLAS)
        openblas_set_num_threads(saved);
    else
        omp_set_num_threads(saved);
    return status;
}

void gemm_f32(const compute *cpu, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, int b_transposed, float beta, float *c,
              int64_t ldc)
{
    /* Arguments come from the library's own shapes; oneDNN only fails on invalid ones. */
    sgemm(cpu->backend, cpu->n_threads, m, n, k, alpha, a, lda, b, ldb, b_transposed, beta, c, ldc);
}

/* y = x · Wᵀ through the row kernels (see the file comment). */
static r2gen_status matmul_rows(const compute *cpu, const type_kernels *tk, float *y,
                                const float *x, int64_t m, const tensor *w, error *err)
{
    int64_t n_in = w->ne[0], n_out = tensor_n_rows(w);
    size_t w_row_bytes = tensor_row_bytes(w->type, n_in);
    /* Float activations (f16/bf16 weights) are used in place; others are quantised once. */
    const void *act = x;
    size_t act_stride = (size_t)n_in * sizeof(float);
    void *act_quantised = NULL;
    if (tk->act_block_elems > 1) {
        act_stride = act_row_bytes(tk, n_in);
        act_quantised = malloc(act_stride * (size_t)m);
        if (!act_quantised)
            return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "matmul: activation buffer");
        for (int64_t r = 0; r < m; r++)
            tk->quantize_act(x + r * n_in, (char *)act_quantised + r * act_stride, n_in);
        act = act_quantised;
    }
#pragma omp parallel for num_threads(cpu->n_threads) schedule(dynamic, MATMUL_ROWS_PER_ITEM)
    for (int64_t j = 0; j < n_out; j++) {
        const void *w_row = (const char *)w->data + (size_t)j * w_row_bytes;
        for (int64_t r0 = 0; r0 < m; r0 += KERNEL_MAX_ROWS) {
            int n_rows = m - r0 < KERNEL_MAX_ROWS ? (int)(m - r0) : KERNEL_MAX_ROWS;
            float out[KERNEL_MAX_ROWS];
            tk->dot(n_in, w_row, (const char *)act + r0 * act_stride, act_stride, n_rows, out);
            for (int r = 0; r < n_rows; r++) y[(r0 + r) * n_out + j] = out[r];
        }
    }
    free(act_quantised);
    return R2GEN_OK;
}

/* y = x · Wᵀ by dequantised panels of W, one panel per thread at a time. */
static r2gen_status matmul_panels(const compute *cpu, const type_kernels *tk, float *y,
                                  const float *x, int64_t m, const tensor *w, error *err)
{
    int64_t n_in = w->ne[0], n_out = tensor_n_rows(w);
    size_t w_row_bytes = tensor_row_bytes(w->type, n_in);
    int64_t n_panels = (n_out + MATMUL_PANEL_ROWS - 1) / MATMUL_PANEL_ROWS;
    int n_threads = cpu->n_threads < n_panels ? cpu->n_threads : (int)n_panels;
    int failed_alloc = 0;
    dnnl_status_t failed_gemm = dnnl_success;
    /* OpenBLAS's own threads would multiply ours: run it single-threaded inside the region. */
    int saved_blas_threads = 0;
    if (cpu->backend == GEMM_OPENBLAS) {
        saved_blas_threads = openblas_get_num_threads();
        openblas_set_num_threads(1);
    }
#pragma omp parallel num_threads(n_threads) reduction(| : failed_alloc)
    {
        float *panel = malloc((size_t)MATMUL_PANEL_ROWS * (size_t)n_in * sizeof *panel);
        if (!panel) failed_alloc = 1;
        omp_set_num_threads(1); /* this thread's oneDNN calls stay on this thread */
#pragma omp for schedule(dynamic, 1)
        for (int64_t p = 0; p < n_panels; p++) {
            if (!panel) continue;
            int64_t j0 = p * MATMUL_PANEL_ROWS;
            int64_t rows = n_out - j0 < MATMUL_PANEL_ROWS ? n_out - j0 : MATMUL_PANEL_ROWS;
            for (int64_t j = 0; j < rows; j++)
                tk->to_float((const char *)w->data + (size_t)(j0 + j) * w_row_bytes,
                             panel + j * n_in, n_in);
            dnnl_status_t status = sgemm_as_set(cpu->backend, m, rows, n_in, 1.0f, x, n_in,
                                                panel, n_in, 1, 0.0f, y + j0, n_out);
            if (status != dnnl_success) {
#pragma omp critical(matmul_gemm_status)
                failed_gemm = status;
            }
        }
        free(panel);
    }
    if (cpu->backend == GEMM_OPENBLAS) openblas_set_num_threads(saved_blas_threads);
    if (failed_alloc) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "matmul: weight panel");
    if (failed_gemm != dnnl_success)
        return error_set(err, R2GEN_ERR_INTERNAL, "matmul: oneDNN sgemm failed (status %d)",
                         (int)failed_gemm);
    return R2GEN_OK;
}

static r2gen_status check_shapes(const tensor *w, int64_t m, error *err)
{
    if (m < 0) return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "matmul: %lld rows", (long long)m);
    if (w->type != TENSOR_F32 && !kernels_for_type(&kernels_scalar, w->type))
        return error_set(err, R2GEN_ERR_UNSUPPORTED, "matmul: weight %s has type %s",
                         w->name ? w->name : "?", tensor_type_name(w->type));
    if (w->ne[0] <= 0 || tensor_row_bytes(w->type, w->ne[0]) == 0)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "matmul: weight %s rows of %lld values are not whole %s blocks",
                         w->name ? w->name : "?", (long long)w->ne[0], tensor_type_name(w->type));
    return R2GEN_OK;
}

r2gen_status matmul(const compute *cpu, float *y, const float *x, int64_t m, const tensor *w,
                    const float *bias, error *err)
{
    r2gen_status status = check_shapes(w, m, err);
    if (status != R2GEN_OK || m == 0) return status;
    int64_t n_in = w->ne[0], n_out = tensor_n_rows(w);
    if (w->type == TENSOR_F32) {
        dnnl_status_t gemm_status = sgemm(cpu->backend, cpu->n_threads, m, n_out, n_in, 1.0f, x,
                                          n_in, w->data, n_in, 1, 0.0f, y, n_out);
        if (gemm_status != dnnl_success)
            return error_set(err, R2GEN_ERR_INTERNAL, "matmul: oneDNN sgemm failed (status %d)",
                             (int)gemm_status);
    } else {
        const type_kernels *tk = kernels_for_type(kernels_select(), w->type);
        /* Integer products on quantised activations beat an sgemm on dequantised weights at any
         * m: for the 16-bit float types only a few rows do. */
        if (m <= MATMUL_ROW_KERNEL_MAX_M || tk->act_block_elems > 1)
            status = matmul_rows(cpu, tk, y, x, m, w, err);
        else if (w->type == TENSOR_BF16 && cpu->allow_bf16 && kernels_cpu_has_bf16())
            status = matmul_bf16_onednn(cpu, y, x, m, w, err);
        else
            status = matmul_panels(cpu, tk, y, x, m, w, err);
        if (status != R2GEN_OK) return status;
    }
    if (bias)
        for (int64_t r = 0; r < m; r++)
            for (int64_t j = 0; j < n_out; j++) y[r * n_out + j] += bias[j];
    return R2GEN_OK;
}
