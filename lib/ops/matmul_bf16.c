/* oneDNN matmul primitives: the bf16 route of matmul, and pre-packed Linear layers.
 *
 * Threads: oneDNN (OpenMP build) sizes its parallel regions from the calling thread's nthreads
 * ICV, and a matmul primitive fixes its work split when it is created, so the ICV is set to
 * cpu->n_threads around both creation and execution and restored afterwards. */
#include "matmul_bf16.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h"
#include "ops.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        r2gen_status try_status_ = (expr);                                                         \
        if (try_status_ != R2GEN_OK) return try_status_;                                           \
    } while (0)

static r2gen_status onednn_failed(error *err, const char *what, dnnl_status_t st)
{
    return error_set(err, R2GEN_ERR_INTERNAL, "matmul: oneDNN %s failed (status %d)", what,
                     (int)st);
}

/* x[m][n] rounded to bf16, rows spread over the threads. */
static void rows_to_bf16(const compute *cpu, uint16_t *out, const float *x, int64_t m, int64_t n)
{
#pragma omp parallel for num_threads(cpu->n_threads) schedule(static)
    for (int64_t r = 0; r < m; r++) floats_to_bf16(out + r * n, x + r * n, n);
}

/* Runs `primitive` on exactly cpu->n_threads threads. */
static dnnl_status_t execute(const compute *cpu, dnnl_primitive_t primitive, dnnl_stream_t stream,
                             int n_args, const dnnl_exec_arg_t *args)
{
    int saved = omp_get_max_threads();
    omp_set_num_threads(cpu->n_threads);
    dnnl_status_t st = dnnl_primitive_execute(primitive, stream, n_args, args);
    if (st == dnnl_success) st = dnnl_stream_wait(stream);
    omp_set_num_threads(saved);
    return st;
}

/* Memory objects over caller buffers for one execution; NULL entries of `descs` are skipped. */
static dnnl_status_t wrap_buffers(dnnl_engine_t engine, int n, const dnnl_memory_desc_t *descs,
                                  void *const *buffers, dnnl_memory_t *memories)
{
    dnnl_status_t st = dnnl_success;
    for (int i = 0; i < n; i++) {
        memories[i] = NULL;
        if (st == dnnl_success && buffers[i])
            st = dnnl_memory_create(&memories[i], &descs[i], engine, buffers[i]);
    }
    return st;
}

static void release_buffers(int n, dnnl_memory_t *memories)
{
    for (int i = 0; i < n; i++) dnnl_memory_destroy(memories[i]);
}

/* ---------------------------------------------------------------------------------------------
 * The bf16 route of matmul: one primitive per call */

/* y = x · Wᵀ for bf16 W with oneDNN's bf16 matmul (AVX512_BF16 dot products, f32 accumulation
 * and output): x is rounded to bf16, which is why it needs cpu->allow_bf16. W [n_out][n_in] is
 * described in place as the [n_in][n_out] weights matrix with strides {1, n_in}. */
r2gen_status matmul_bf16_onednn(const compute *cpu, float *y, const float *x, int64_t m,
                                const tensor *w, error *err)
{
    int64_t n_in = w->ne[0], n_out = tensor_n_rows(w);
    uint16_t *x_bf16 = malloc(sizeof *x_bf16 * (size_t)(m * n_in));
    if (!x_bf16) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "matmul: bf16 activations");
    rows_to_bf16(cpu, x_bf16, x, m, n_in);

    dnnl_engine_t engine = NULL;
    dnnl_stream_t stream = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t primitive = NULL;
    dnnl_memory_t memories[3] = {NULL, NULL, NULL};
    dnnl_memory_desc_t descs[3]; /* src, weights, dst */
    dnnl_matmul_desc_t desc;
    const dnnl_dims_t src_dims = {m, n_in}, weights_dims = {n_in, n_out}, dst_dims = {m, n_out};
    const dnnl_dims_t weights_strides = {1, n_in};
    dnnl_status_t st = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (st == dnnl_success) st = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&descs[0], 2, src_dims, dnnl_bf16, dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_strides(&descs[1], 2, weights_dims, dnnl_bf16,
                                              weights_strides);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&descs[2], 2, dst_dims, dnnl_f32, dnnl_ab);
    if (st == dnnl_success) st = dnnl_matmul_desc_init(&desc, &descs[0], &descs[1], NULL, &descs[2]);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&primitive, pd);
    /* oneDNN takes a non-const handle but only reads weights. */
    void *const buffers[3] = {x_bf16, (void *)w->data, y};
    if (st == dnnl_success) st = wrap_buffers(engine, 3, descs, buffers, memories);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, memories[0]},
                                   {DNNL_ARG_WEIGHTS, memories[1]},
                                   {DNNL_ARG_DST, memories[2]}};
        st = execute(cpu, primitive, stream, 3, args);
    }
    release_buffers(3, memories);
    dnnl_primitive_destroy(primitive);
    dnnl_primitive_desc_destroy(pd);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    free(x_bf16);
    if (st != dnnl_success) return onednn_failed(err, "bf16 matmul", st);
    return R2GEN_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Pre-packed Linear layers */

static dnnl_data_type_t onednn_type(tensor_type t) { return t == TENSOR_BF16 ? dnnl_bf16 : dnnl_f32; }

/* The matmul descriptor of `l` for m rows: src in the layer's type, weights as `weights_desc`
 * (oneDNN's choice when its format is `any`), f32 bias, dst f32 or bf16. */
static dnnl_status_t describe(const linear *l, int64_t m, const dnnl_memory_desc_t *weights_desc,
                              int bf16_out, dnnl_memory_desc_t descs[4], dnnl_matmul_desc_t *desc)
{
    const dnnl_dims_t src_dims = {m, l->n_in}, dst_dims = {m, l->n_out}, bias_dims = {1, l->n_out};
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&descs[0], 2, src_dims,
                                                    onednn_type(l->packed_type), dnnl_ab);
    descs[1] = *weights_desc;
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&descs[2], 2, bias_dims, dnnl_f32, dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&descs[3], 2, dst_dims, bf16_out ? dnnl_bf16 : dnnl_f32,
                                          dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_matmul_desc_init(desc, &descs[0], &descs[1], l->bias ? &descs[2] : NULL,
                                   &descs[3]);
    return st;
}

static dnnl_status_t create_pd(dnnl_engine_t engine, const dnnl_matmul_desc_t *desc,
                               linear_epilogue epilogue, dnnl_primitive_desc_t *pd)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post_ops = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success) st = dnnl_post_ops_create(&post_ops);
    if (st == dnnl_success && epilogue == LINEAR_ACCUMULATE)
        st = dnnl_post_ops_append_sum(post_ops, 1.0f);
    if (st == dnnl_success && epilogue == LINEAR_GELU)
        st = dnnl_post_ops_append_eltwise(post_ops, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, post_ops);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, desc, attr, engine, NULL);
    dnnl_post_ops_destroy(post_ops);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* The parts' rows one after another in their own (f32 or bf16) encoding: W as [n_out][n_in]. */
static void *stack_rows(const linear *l)
{
    size_t elem = l->packed_type == TENSOR_BF16 ? 2 : 4;
    char *rows = malloc((size_t)(l->n_in * l->n_out) * elem);
    if (!rows) return NULL;
    size_t offset = 0;
    for (int p = 0; p < l->n_parts; p++) {
        size_t size = (size_t)(l->n_in * tensor_n_rows(l->parts[p])) * elem;
        memcpy(rows + offset, l->parts[p]->data, size);
        offset += size;
    }
    return rows;
}

/* Reorders the stacked rows into the layout oneDNN picks for m rows. oneDNN refusing the shape is
 * not an error: the layer then stays unpacked and runs through matmul(). */
static r2gen_status pack(linear *l, int64_t m, error *err)
{
    void *rows = stack_rows(l);
    if (!rows) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "linear: stacking weights");
    dnnl_engine_t engine = NULL;
    dnnl_stream_t stream = NULL;
    dnnl_primitive_desc_t pd = NULL, reorder_pd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t memories[2] = {NULL, NULL};
    dnnl_memory_desc_t any, plain, descs[4];
    dnnl_matmul_desc_t desc;
    const dnnl_dims_t weights_dims = {l->n_in, l->n_out}, plain_strides = {1, l->n_in};
    r2gen_status status = R2GEN_OK;
    dnnl_status_t st = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (st == dnnl_success) st = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&any, 2, weights_dims, onednn_type(l->packed_type),
                                          dnnl_format_tag_any);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_strides(&plain, 2, weights_dims,
                                              onednn_type(l->packed_type), plain_strides);
    if (st == dnnl_success) st = describe(l, m, &any, 0, descs, &desc);
    int refused = st == dnnl_success && create_pd(engine, &desc, LINEAR_STORE, &pd) != dnnl_success;
    if (st == dnnl_success && !refused) {
        l->packed_desc = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        l->packed = malloc(dnnl_memory_desc_get_size(&l->packed_desc));
        if (!l->packed)
            status = error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "linear: packed weights");
    }
    if (l->packed) {
        st = dnnl_reorder_primitive_desc_create(&reorder_pd, &plain, engine, &l->packed_desc,
                                                engine, NULL);
        if (st == dnnl_success) st = dnnl_primitive_create(&reorder, reorder_pd);
        dnnl_memory_desc_t pair[2] = {plain, l->packed_desc};
        void *const buffers[2] = {rows, l->packed};
        if (st == dnnl_success) st = wrap_buffers(engine, 2, pair, buffers, memories);
        if (st == dnnl_success) {
            dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, memories[0]}, {DNNL_ARG_TO, memories[1]}};
            st = dnnl_primitive_execute(reorder, stream, 2, args);
        }
        if (st == dnnl_success) st = dnnl_stream_wait(stream);
    }
    if (st != dnnl_success && status == R2GEN_OK) status = onednn_failed(err, "weight packing", st);
    release_buffers(2, memories);
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(reorder_pd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    free(rows);
    return status;
}

r2gen_status linear_init(linear *l, int n_parts, const tensor *const *parts,
                         const float *const *biases, int64_t m, error *err)
{
    memset(l, 0, sizeof *l);
    l->n_parts = n_parts;
    l->n_in = parts[0]->ne[0];
    tensor_type type = parts[0]->type;
    for (int p = 0; p < n_parts; p++) {
        l->parts[p] = parts[p];
        l->part_biases[p] = biases ? biases[p] : NULL;
        l->n_out += tensor_n_rows(parts[p]);
        if (parts[p]->type != type || parts[p]->ne[0] != l->n_in)
            return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                             "linear: parts of %s differ in type or width",
                             parts[0]->name ? parts[0]->name : "?");
    }
    if (biases) {
        l->bias = malloc((size_t)l->n_out * sizeof *l->bias);
        if (!l->bias) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "linear: bias");
        int64_t at = 0;
        for (int p = 0; p < n_parts; p++) {
            int64_t rows = tensor_n_rows(parts[p]);
            memcpy(l->bias + at, biases[p], (size_t)rows * sizeof *l->bias);
            at += rows;
        }
    }
    if (type != TENSOR_F32 && !(type == TENSOR_BF16 && kernels_cpu_has_bf16())) return R2GEN_OK;
    l->packed_type = type;
    r2gen_status status = pack(l, m, err);
    if (status != R2GEN_OK) linear_free(l);
    return status;
}

void linear_free(linear *l)
{
    free(l->bias);
    free(l->packed);
    memset(l, 0, sizeof *l);
}

/* ---------------------------------------------------------------------------------------------
 * Running layers */

r2gen_status linear_runner_init(linear_runner *r, const compute *cpu, error *err)
{
    memset(r, 0, sizeof *r);
    r->cpu = cpu;
    dnnl_status_t st = dnnl_engine_create(&r->engine, dnnl_cpu, 0);
    if (st == dnnl_success) st = dnnl_stream_create(&r->stream, r->engine, dnnl_stream_default_flags);
    if (st != dnnl_success) {
        linear_runner_free(r);
        return onednn_failed(err, "engine creation", st);
    }
    return R2GEN_OK;
}

void linear_runner_free(linear_runner *r)
{
    for (int i = 0; i < r->n_primitives; i++) dnnl_primitive_destroy(r->primitives[i].primitive);
    free(r->primitives);
    free(r->activations_bf16);
    free(r->scratch);
    dnnl_stream_destroy(r->stream);
    dnnl_engine_destroy(r->engine);
    memset(r, 0, sizeof *r);
}

/* Whether l runs as its packed primitive under this compute setting: bf16 products only when
 * allowed, f32 ones only with the oneDNN backend (OpenBLAS was asked for otherwise). */
static int runs_packed(const linear_runner *r, const linear *l)
{
    if (!l->packed) return 0;
    return l->packed_type == TENSOR_BF16 ? r->cpu->allow_bf16 : r->cpu->backend == GEMM_ONEDNN;
}

static int same_layout(const linear *a, const linear *b)
{
    return a->n_in == b->n_in && a->n_out == b->n_out && a->packed_type == b->packed_type &&
           !a->bias == !b->bias && dnnl_memory_desc_equal(&a->packed_desc, &b->packed_desc);
}

/* The primitive for (m, layout of l, epilogue, output type), created on first use. */
static r2gen_status find_primitive(linear_runner *r, const linear *l, int64_t m,
                                   linear_epilogue epilogue, int bf16_out,
                                   dnnl_primitive_t *primitive, error *err)
{
    for (int i = 0; i < r->n_primitives; i++) {
        const linear_primitive *p = &r->primitives[i];
        if (p->m == m && p->epilogue == epilogue && p->bf16_out == bf16_out &&
            same_layout(p->layer, l)) {
            *primitive = p->primitive;
            return R2GEN_OK;
        }
    }
    if (r->n_primitives == r->capacity) {
        int capacity = r->capacity ? 2 * r->capacity : 16;
        linear_primitive *grown = realloc(r->primitives, (size_t)capacity * sizeof *grown);
        if (!grown) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "linear: primitive list");
        r->primitives = grown;
        r->capacity = capacity;
    }
    dnnl_memory_desc_t descs[4];
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    *primitive = NULL;
    int saved = omp_get_max_threads();
    omp_set_num_threads(r->cpu->n_threads);
    if (describe(l, m, &l->packed_desc, bf16_out, descs, &desc) == dnnl_success &&
        create_pd(r->engine, &desc, epilogue, &pd) == dnnl_success &&
        dnnl_primitive_create(primitive, pd) != dnnl_success)
        *primitive = NULL;
    omp_set_num_threads(saved);
    dnnl_primitive_desc_destroy(pd);
    r->primitives[r->n_primitives++] = (linear_primitive){m, l, epilogue, bf16_out, *primitive};
    return R2GEN_OK;
}

/* Grows *buffer to hold n elements of `size` bytes. */
static r2gen_status reserve(void **buffer, size_t *have, size_t n, size_t size, error *err)
{
    if (n <= *have) return R2GEN_OK;
    free(*buffer);
    *buffer = malloc(n * size);
    *have = *buffer ? n : 0;
    if (!*buffer) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "linear: scratch buffer");
    return R2GEN_OK;
}

/* Executes a packed layer's primitive on x in the layer's type, y f32 or bf16. */
static r2gen_status run_primitive(linear_runner *r, const linear *l, dnnl_primitive_t primitive,
                                  void *y, int bf16_out, const void *x, int64_t m, error *err)
{
    dnnl_memory_desc_t descs[4];
    dnnl_matmul_desc_t desc;
    dnnl_memory_t memories[4];
    /* oneDNN takes non-const handles but only reads src, weights and bias. */
    void *const buffers[4] = {(void *)x, l->packed, l->bias, y};
    dnnl_status_t st = describe(l, m, &l->packed_desc, bf16_out, descs, &desc);
    if (st == dnnl_success) st = wrap_buffers(r->engine, 4, descs, buffers, memories);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, memories[0]},
                                   {DNNL_ARG_WEIGHTS, memories[1]},
                                   {DNNL_ARG_DST, memories[3]},
                                   {DNNL_ARG_BIAS, memories[2]}};
        st = execute(r->cpu, primitive, r->stream, l->bias ? 4 : 3, args);
    }
    release_buffers(4, memories);
    return st == dnnl_success ? R2GEN_OK : onednn_failed(err, "matmul", st);
}

/* x as the packed layer reads it: itself for f32 layers, rounded to bf16 for bf16 ones. */
static r2gen_status layer_input(linear_runner *r, const linear *l, const float *x, int64_t m,
                                const void **input, error *err)
{
    *input = x;
    if (l->packed_type != TENSOR_BF16) return R2GEN_OK;
    TRY(reserve((void **)&r->activations_bf16, &r->activations_size, (size_t)(m * l->n_in),
                sizeof *r->activations_bf16, err));
    rows_to_bf16(r->cpu, r->activations_bf16, x, m, l->n_in);
    *input = r->activations_bf16;
    return R2GEN_OK;
}

static void gelu_rows(const compute *cpu, float *y, int64_t m, int64_t n)
{
#pragma omp parallel for num_threads(cpu->n_threads) schedule(static)
    for (int64_t r = 0; r < m; r++) gelu_erf(y + r * n, n);
}

/* The layer through matmul(), part by part; parts and accumulation go through the scratch. */
static r2gen_status run_unpacked(linear_runner *r, const linear *l, float *y, const float *x,
                                 int64_t m, linear_epilogue epilogue, error *err)
{
    int direct = l->n_parts == 1 && epilogue != LINEAR_ACCUMULATE;
    int64_t column = 0;
    for (int p = 0; p < l->n_parts; p++) {
        int64_t n = tensor_n_rows(l->parts[p]);
        float *out = y;
        if (!direct) {
            TRY(reserve((void **)&r->scratch, &r->scratch_size, (size_t)(m * n), sizeof(float),
                        err));
            out = r->scratch;
        }
        TRY(matmul(r->cpu, out, x, m, l->parts[p], l->part_biases[p], err));
        if (!direct) {
#pragma omp parallel for num_threads(r->cpu->n_threads) schedule(static)
            for (int64_t i = 0; i < m; i++) {
                float *dst = y + i * l->n_out + column;
                if (epilogue == LINEAR_ACCUMULATE)
                    add(dst, out + i * n, n);
                else
                    memcpy(dst, out + i * n, (size_t)n * sizeof *dst);
            }
        }
        column += n;
    }
    if (epilogue == LINEAR_GELU) gelu_rows(r->cpu, y, m, l->n_out);
    return R2GEN_OK;
}

r2gen_status linear_forward(linear_runner *r, const linear *l, float *y, const float *x,
                            int64_t m, linear_epilogue epilogue, error *err)
{
    dnnl_primitive_t primitive = NULL;
    if (m > 0 && runs_packed(r, l)) TRY(find_primitive(r, l, m, epilogue, 0, &primitive, err));
    if (!primitive) return run_unpacked(r, l, y, x, m, epilogue, err);
    const void *input;
    TRY(layer_input(r, l, x, m, &input, err));
    return run_primitive(r, l, primitive, y, 0, input, m, err);
}

r2gen_status linear_mlp(linear_runner *r, const linear *up, const linear *down, float *y,
                        const float *x, int64_t m, float *hidden, error *err)
{
    dnnl_primitive_t up_bf16 = NULL, down_bf16 = NULL;
    if (m > 0 && runs_packed(r, up) && runs_packed(r, down) && up->packed_type == TENSOR_BF16 &&
        down->packed_type == TENSOR_BF16) {
        TRY(find_primitive(r, up, m, LINEAR_GELU, 1, &up_bf16, err));
        TRY(find_primitive(r, down, m, LINEAR_ACCUMULATE, 0, &down_bf16, err));
    }
    if (!up_bf16 || !down_bf16) {
        TRY(linear_forward(r, up, hidden, x, m, LINEAR_GELU, err));
        return linear_forward(r, down, y, hidden, m, LINEAR_ACCUMULATE, err);
    }
    /* bf16 hand-over: the GELU output is written as bf16, which down would round it to anyway. */
    const void *input;
    TRY(layer_input(r, up, x, m, &input, err));
    TRY(run_primitive(r, up, up_bf16, hidden, 1, input, m, err));
    return run_primitive(r, down, down_bf16, y, 0, hidden, m, err);
}
