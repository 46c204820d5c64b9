/* The bf16 route of matmul: oneDNN's bf16 matmul primitive on AVX512_BF16 CPUs. */
#include "matmul_bf16.h"

#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>

/* y = x · Wᵀ for bf16 W with oneDNN's bf16 matmul (AVX512_BF16 dot products, f32 accumulation
 * and output): x is rounded to bf16, which is why it needs cpu->allow_bf16. W [n_out][n_in] is
 * described in place as the [n_in][n_out] weights matrix with strides {1, n_in}. */
r2gen_status matmul_bf16_onednn(const compute *cpu, float *y, const float *x, int64_t m,
                                       const tensor *w, error *err)
{
    int64_t n_in = w->ne[0], n_out = tensor_n_rows(w);
    uint16_t *x_bf16 = malloc(sizeof *x_bf16 * (size_t)(m * n_in));
    if (!x_bf16) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "matmul: bf16 activations");
#pragma omp parallel for num_threads(cpu->n_threads) schedule(static)
    for (int64_t i = 0; i < m * n_in; i++) x_bf16[i] = f32_to_bf16(x[i]);

    dnnl_engine_t engine = NULL;
    dnnl_stream_t stream = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t primitive = NULL;
    dnnl_memory_t src = NULL, weights = NULL, dst = NULL;
    dnnl_memory_desc_t src_md, weights_md, dst_md;
    dnnl_matmul_desc_t desc;
    const dnnl_dims_t src_dims = {m, n_in}, weights_dims = {n_in, n_out}, dst_dims = {m, n_out};
    const dnnl_dims_t weights_strides = {1, n_in};
    dnnl_status_t st = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (st == dnnl_success) st = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, dnnl_bf16, dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_strides(&weights_md, 2, weights_dims, dnnl_bf16,
                                              weights_strides);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dnnl_f32, dnnl_ab);
    if (st == dnnl_success) st = dnnl_matmul_desc_init(&desc, &src_md, &weights_md, NULL, &dst_md);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&primitive, pd);
    if (st == dnnl_success) st = dnnl_memory_create(&src, &src_md, engine, x_bf16);
    /* oneDNN takes a non-const handle but only reads weights. */
    if (st == dnnl_success) st = dnnl_memory_create(&weights, &weights_md, engine, (void *)w->data);
    if (st == dnnl_success) st = dnnl_memory_create(&dst, &dst_md, engine, y);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[3] = {
            {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
        int saved = omp_get_max_threads();
        omp_set_num_threads(cpu->n_threads);
        st = dnnl_primitive_execute(primitive, stream, 3, args);
        if (st == dnnl_success) st = dnnl_stream_wait(stream);
        omp_set_num_threads(saved);
    }
    dnnl_memory_destroy(dst);
    dnnl_memory_destroy(weights);
    dnnl_memory_destroy(src);
    dnnl_primitive_destroy(primitive);
    dnnl_primitive_desc_destroy(pd);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    free(x_bf16);
    if (st != dnnl_success)
        return error_set(err, R2GEN_ERR_INTERNAL, "matmul: oneDNN bf16 matmul failed (status %d)",
                         (int)st);
    return R2GEN_OK;
}
