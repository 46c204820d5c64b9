#include "swin.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/matmul.h"
#include "ops/ops.h"

/* HF builds embeddings.norm and the patch-merging norms as nn.LayerNorm(dim) without passing
 * config.layer_norm_eps, so they always use PyTorch's default. */
#define SWIN_FIXED_NORM_EPS 1e-5f

/* The value HF adds to scores between tokens of different regions of a shifted window. */
#define SWIN_MASK_VALUE -100.0f

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        r2gen_status try_status_ = (expr);                                                         \
        if (try_status_ != R2GEN_OK) return try_status_;                                           \
    } while (0)

/* ---------------------------------------------------------------------------------------------
 * Loading */

static const char *join(char *buf, size_t size, const char *prefix, const char *suffix)
{
    snprintf(buf, size, "%s%s", prefix, suffix);
    return buf;
}

/* Norm weights, biases and bias tables are read as float arrays, so they must be f32. */
static r2gen_status load_f32(const gguf_file *f, const char *name, int n_dims, const int64_t *ne,
                             const float **out, error *err)
{
    const tensor *t;
    TRY(gguf_require_tensor(f, name, GGUF_ALLOW_F32, n_dims, ne, &t, err));
    *out = t->data;
    return R2GEN_OK;
}

static r2gen_status load_vector(const gguf_file *f, const char *prefix, const char *suffix,
                                int64_t n, const float **out, error *err)
{
    char name[160];
    return load_f32(f, join(name, sizeof name, prefix, suffix), 1, &n, out, err);
}

/* A Linear weight [out, in]: stored with ne = (in, out), any type the matmul handles. */
static r2gen_status load_matrix(const gguf_file *f, const char *prefix, const char *suffix,
                                int64_t n_in, int64_t n_out, const tensor **out, error *err)
{
    char name[160];
    int64_t ne[2] = {n_in, n_out};
    return gguf_require_tensor(f, join(name, sizeof name, prefix, suffix), GGUF_ALLOW_ANY, 2, ne,
                               out, err);
}

static r2gen_status load_linear(const gguf_file *f, const char *prefix, const char *what,
                                int64_t n_in, int64_t n_out, const tensor **weight,
                                const float **bias, error *err)
{
    char suffix[64];
    TRY(load_matrix(f, prefix, join(suffix, sizeof suffix, what, ".weight"), n_in, n_out, weight,
                    err));
    return load_vector(f, prefix, join(suffix, sizeof suffix, what, ".bias"), n_out, bias, err);
}

static r2gen_status load_norm(const gguf_file *f, const char *prefix, const char *what, int64_t n,
                              const float **weight, const float **bias, error *err)
{
    char suffix[64];
    TRY(load_vector(f, prefix, join(suffix, sizeof suffix, what, ".weight"), n, weight, err));
    return load_vector(f, prefix, join(suffix, sizeof suffix, what, ".bias"), n, bias, err);
}

static r2gen_status load_block(const gguf_file *f, const swin_stage *st, int s, int b,
                               swin_block *blk, error *err)
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "r2gen.vision.layers.%d.blocks.%d.", s, b);
    int64_t c = st->dim, ffn = st->ffn_dim;
    TRY(load_norm(f, prefix, "norm1", c, &blk->norm1_weight, &blk->norm1_bias, err));
    TRY(load_linear(f, prefix, "attn_q", c, c, &blk->attn_q, &blk->attn_q_bias, err));
    TRY(load_linear(f, prefix, "attn_k", c, c, &blk->attn_k, &blk->attn_k_bias, err));
    TRY(load_linear(f, prefix, "attn_v", c, c, &blk->attn_v, &blk->attn_v_bias, err));
    TRY(load_linear(f, prefix, "attn_out", c, c, &blk->attn_out, &blk->attn_out_bias, err));
    char name[160];
    int64_t table_ne[2] = {st->n_heads, (2 * st->window - 1) * (2 * st->window - 1)};
    TRY(load_f32(f, join(name, sizeof name, prefix, "rel_pos_bias"), 2, table_ne,
                 &blk->rel_pos_bias, err));
    TRY(load_norm(f, prefix, "norm2", c, &blk->norm2_weight, &blk->norm2_bias, err));
    TRY(load_linear(f, prefix, "ffn_up", c, ffn, &blk->ffn_up, &blk->ffn_up_bias, err));
    return load_linear(f, prefix, "ffn_down", ffn, c, &blk->ffn_down, &blk->ffn_down_bias, err);
}

/* HF's relative_position_index: for query token i = (yi, xi) and key j = (yj, xj), row-major in
 * the window, the table row (yi - yj + w - 1) * (2w - 1) + (xi - xj + w - 1). */
static void fill_rel_pos_index(int32_t *index, int w)
{
    int t = w * w;
    for (int i = 0; i < t; i++)
        for (int j = 0; j < t; j++)
            index[i * t + j] = (i / w - j / w + w - 1) * (2 * w - 1) + (i % w - j % w + w - 1);
}

/* HF's get_attn_mask: the shifted map is cut into 3 bands per axis ([0, side - window),
 * [side - window, side - shift), [side - shift, side)); tokens of one window that come from
 * different bands must not attend to each other. */
static int shift_band(int coord, int side, int window, int shift)
{
    return coord < side - window ? 0 : coord < side - shift ? 1 : 2;
}

/* Region label of token i of window `win` in the rolled map. */
static int shift_region(int win, int i, int side, int window, int shift)
{
    int per_row = side / window;
    int y = (win / per_row) * window + i / window, x = (win % per_row) * window + i % window;
    return shift_band(y, side, window, shift) * 3 + shift_band(x, side, window, shift);
}

static void fill_shift_mask(float *mask, int side, int window, int shift)
{
    int n_windows = (side / window) * (side / window), t = window * window;
    for (int win = 0; win < n_windows; win++) {
        float *m = mask + (size_t)win * t * t;
        for (int i = 0; i < t; i++) {
            int region = shift_region(win, i, side, window, shift);
            for (int j = 0; j < t; j++)
                m[i * t + j] =
                    region == shift_region(win, j, side, window, shift) ? 0.0f : SWIN_MASK_VALUE;
        }
    }
}

static r2gen_status read_config(const gguf_file *f, swin_model *m, float *mlp_ratio, error *err)
{
    uint32_t image_size, patch_size, channels, embed_dim, window, num_features;
    uint32_t depths[SWIN_MAX_STAGES], heads[SWIN_MAX_STAGES];
    size_t n_depths, n_heads, n_mean, n_std;
    TRY(gguf_get_u32(f, "r2gen.vision.image_size", &image_size, err));
    TRY(gguf_get_u32(f, "r2gen.vision.patch_size", &patch_size, err));
    TRY(gguf_get_u32(f, "r2gen.vision.num_channels", &channels, err));
    TRY(gguf_get_u32(f, "r2gen.vision.embed_dim", &embed_dim, err));
    TRY(gguf_get_u32_array(f, "r2gen.vision.depths", depths, SWIN_MAX_STAGES, &n_depths, err));
    TRY(gguf_get_u32_array(f, "r2gen.vision.num_heads", heads, SWIN_MAX_STAGES, &n_heads, err));
    TRY(gguf_get_u32(f, "r2gen.vision.window_size", &window, err));
    TRY(gguf_get_f32(f, "r2gen.vision.mlp_ratio", mlp_ratio, err));
    TRY(gguf_get_f32(f, "r2gen.vision.layer_norm_eps", &m->eps, err));
    TRY(gguf_get_u32(f, "r2gen.vision.num_features", &num_features, err));
    TRY(gguf_get_f32_array(f, "r2gen.vision.image_mean", m->image_mean, 3, &n_mean, err));
    TRY(gguf_get_f32_array(f, "r2gen.vision.image_std", m->image_std, 3, &n_std, err));

    if (channels != 3 || n_mean != 3 || n_std != 3)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "r2gen.vision: expected 3 channels, means and stds, got %u, %zu, %zu",
                         channels, n_mean, n_std);
    if (n_depths == 0 || n_depths != n_heads)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "r2gen.vision.depths has %zu stages but num_heads has %zu", n_depths,
                         n_heads);
    if (image_size == 0 || image_size > 8192 || patch_size == 0 || embed_dim == 0 ||
        embed_dim > 65536 || window == 0 || window > 64 || !(*mlp_ratio > 0.0f) ||
        !(m->eps > 0.0f))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "r2gen.vision: invalid configuration value");
    m->image_size = (int)image_size;
    m->patch_size = (int)patch_size;
    m->embed_dim = (int)embed_dim;
    m->window_size = (int)window;
    m->n_stages = (int)n_depths;
    for (int s = 0; s < m->n_stages; s++) {
        if (depths[s] == 0 || depths[s] > 1024 || heads[s] == 0)
            return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                             "r2gen.vision: stage %d has %u blocks and %u heads", s, depths[s],
                             heads[s]);
        m->depths[s] = (int)depths[s];
        m->num_heads[s] = (int)heads[s];
    }
    m->num_features = m->embed_dim << (m->n_stages - 1);
    if (num_features != (uint32_t)m->num_features)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "r2gen.vision.num_features is %u, but embed_dim and depths give %d",
                         num_features, m->num_features);
    return R2GEN_OK;
}

/* Stage geometry. Padding (maps that are no multiple of the window, odd maps before a merge) is
 * never needed at the 224 input the models are trained for, so it is refused, not implemented. */
static r2gen_status plan_stages(swin_model *m, float mlp_ratio, error *err)
{
    if (m->image_size % m->patch_size != 0)
        return error_set(err, R2GEN_ERR_UNSUPPORTED,
                         "r2gen.vision: image_size %d is not a multiple of patch_size %d",
                         m->image_size, m->patch_size);
    int side = m->image_size / m->patch_size, dim = m->embed_dim;
    for (int s = 0; s < m->n_stages; s++) {
        swin_stage *st = &m->stages[s];
        st->dim = dim;
        st->n_heads = m->num_heads[s];
        st->depth = m->depths[s];
        st->side = side;
        st->ffn_dim = (int)(mlp_ratio * (float)dim);
        if (dim % st->n_heads != 0)
            return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                             "r2gen.vision: stage %d width %d is not a multiple of %d heads", s,
                             dim, st->n_heads);
        /* HF SwinLayer.set_shift_and_window_size: a map that fits in one window is one window,
         * unshifted. */
        if (side <= m->window_size) {
            st->window = side;
            st->shift = 0;
        } else if (side % m->window_size == 0) {
            st->window = m->window_size;
            st->shift = m->window_size / 2;
        } else {
            return error_set(err, R2GEN_ERR_UNSUPPORTED,
                             "r2gen.vision: stage %d map %dx%d needs padding to window %d", s,
                             side, side, m->window_size);
        }
        if (s + 1 < m->n_stages) {
            if (side % 2 != 0)
                return error_set(err, R2GEN_ERR_UNSUPPORTED,
                                 "r2gen.vision: stage %d map %dx%d needs padding to merge",
                                 s, side, side);
            side /= 2;
            dim *= 2;
        }
    }
    m->n_tokens = side * side;
    return R2GEN_OK;
}

static r2gen_status load_stage(const gguf_file *f, swin_stage *st, int s, int last, error *err)
{
    int t = st->window * st->window;
    st->blocks = calloc((size_t)st->depth, sizeof *st->blocks);
    st->rel_pos_index = malloc((size_t)t * t * sizeof *st->rel_pos_index);
    int n_windows = (st->side / st->window) * (st->side / st->window);
    if (st->shift > 0) st->shift_mask = malloc((size_t)n_windows * t * t * sizeof *st->shift_mask);
    if (!st->blocks || !st->rel_pos_index || (st->shift > 0 && !st->shift_mask))
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory loading the Swin encoder");
    fill_rel_pos_index(st->rel_pos_index, st->window);
    if (st->shift_mask) fill_shift_mask(st->shift_mask, st->side, st->window, st->shift);

    for (int b = 0; b < st->depth; b++) TRY(load_block(f, st, s, b, &st->blocks[b], err));
    if (last) return R2GEN_OK;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "r2gen.vision.layers.%d.merge.", s);
    TRY(load_norm(f, prefix, "norm", 4 * (int64_t)st->dim, &st->merge_norm_weight,
                  &st->merge_norm_bias, err));
    return load_matrix(f, prefix, "reduction.weight", 4 * (int64_t)st->dim, 2 * (int64_t)st->dim,
                       &st->merge_reduction, err);
}

static r2gen_status load_model(const gguf_file *f, swin_model *m, error *err)
{
    float mlp_ratio;
    TRY(read_config(f, m, &mlp_ratio, err));
    TRY(plan_stages(m, mlp_ratio, err));
    const char *prefix = "r2gen.vision.";
    int64_t patch_len = 3 * (int64_t)m->patch_size * m->patch_size;
    TRY(load_linear(f, prefix, "patch_embed", patch_len, m->embed_dim, &m->patch_embed,
                    &m->patch_embed_bias, err));
    TRY(load_norm(f, prefix, "patch_norm", m->embed_dim, &m->patch_norm_weight,
                  &m->patch_norm_bias, err));
    for (int s = 0; s < m->n_stages; s++)
        TRY(load_stage(f, &m->stages[s], s, s + 1 == m->n_stages, err));
    return load_norm(f, prefix, "norm", m->num_features, &m->norm_weight, &m->norm_bias, err);
}

r2gen_status swin_load(const gguf_file *f, swin_model *m, error *err)
{
    memset(m, 0, sizeof *m);
    r2gen_status status = load_model(f, m, err);
    if (status != R2GEN_OK) swin_free(m);
    return status;
}

void swin_free(swin_model *m)
{
    for (int s = 0; s < SWIN_MAX_STAGES; s++) {
        free(m->stages[s].blocks);
        free(m->stages[s].rel_pos_index);
        free(m->stages[s].shift_mask);
    }
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------------------------------------
 * Encoding */

/* One thread's scratch for the attention of one window and head. */
typedef struct window_scratch {
    float *scores;                /* t x t */
    float *queries, *keys, *values; /* t x head_dim: the head's slice of each token, gathered */
    float *out;                   /* t x head_dim, before it is scattered into the context */
    int32_t *sources; /* t: the map position of each window token */
} window_scratch;

/* Buffers of one encode call, sized for the widest stage. */
typedef struct swin_work {
    float *x;         /* residual stream: tokens x dim */
    float *normed;    /* LayerNorm output; also projection outputs and the merge concatenation */
    float *q, *k, *v; /* tokens x dim */
    float *context;   /* attention output before attn_out: tokens x dim */
    float *hidden;    /* MLP hidden (tokens x ffn_dim); also the gathered patches */
    float *thread_floats;   /* per thread: the float buffers of a window_scratch */
    int32_t *thread_tokens; /* per thread: sources */
    size_t window_tokens, head_dim; /* largest t and head_dim of any stage */
} swin_work;

static void work_free(swin_work *w)
{
    free(w->x);
    free(w->normed);
    free(w->q);
    free(w->k);
    free(w->v);
    free(w->context);
    free(w->hidden);
    free(w->thread_floats);
    free(w->thread_tokens);
}

static size_t scratch_floats(const swin_work *w)
{
    return w->window_tokens * w->window_tokens + 4 * w->window_tokens * w->head_dim;
}

static window_scratch thread_scratch(const swin_work *w, int thread)
{
    size_t t = w->window_tokens;
    float *base = w->thread_floats + (size_t)thread * scratch_floats(w);
    size_t th = t * w->head_dim;
    window_scratch s = {base, base + t * t, base + t * t + th, base + t * t + 2 * th,
                        base + t * t + 3 * th, w->thread_tokens + (size_t)thread * t};
    return s;
}

static r2gen_status work_alloc(const swin_model *m, int n_threads, swin_work *w, error *err)
{
    size_t stream = 0, hidden = 0;
    memset(w, 0, sizeof *w);
    for (int s = 0; s < m->n_stages; s++) {
        const swin_stage *st = &m->stages[s];
        size_t tokens = (size_t)st->side * st->side;
        size_t t = (size_t)st->window * st->window, head_dim = (size_t)(st->dim / st->n_heads);
        if (tokens * st->dim > stream) stream = tokens * st->dim;
        if (tokens * st->ffn_dim > hidden) hidden = tokens * st->ffn_dim;
        if (t > w->window_tokens) w->window_tokens = t;
        if (head_dim > w->head_dim) w->head_dim = head_dim;
    }
    size_t patches = (size_t)m->stages[0].side * m->stages[0].side * 3 * m->patch_size *
                     m->patch_size;
    if (patches > hidden) hidden = patches;
    w->x = malloc(stream * sizeof(float));
    w->normed = malloc(stream * sizeof(float));
    w->q = malloc(stream * sizeof(float));
    w->k = malloc(stream * sizeof(float));
    w->v = malloc(stream * sizeof(float));
    w->context = malloc(stream * sizeof(float));
    w->hidden = malloc(hidden * sizeof(float));
    w->thread_floats = malloc((size_t)n_threads * scratch_floats(w) * sizeof(float));
    w->thread_tokens = malloc((size_t)n_threads * w->window_tokens * sizeof(int32_t));
    if (!w->x || !w->normed || !w->q || !w->k || !w->v || !w->context || !w->hidden ||
        !w->thread_floats || !w->thread_tokens) {
        work_free(w);
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for Swin activations");
    }
    return R2GEN_OK;
}

static void trace_emit(const swin_trace *trace, const char *name, const float *data,
                       int64_t n_tokens, int64_t dim)
{
    if (trace && trace->fn) trace->fn(trace->user, name, data, n_tokens, dim);
}

/* The row-wise operations between the matrix products, spread over the threads by rows. */
static void gelu_rows(const compute *cpu, float *x, int64_t rows, int64_t n)
{
#pragma omp parallel for num_threads(cpu->n_threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) gelu_erf(x + r * n, n);
}

static void layer_norm_rows(const compute *cpu, float *out, const float *x, int64_t rows,
                            int64_t n, const float *weight, const float *bias, float eps)
{
#pragma omp parallel for num_threads(cpu->n_threads) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        layer_norm(out + r * n, x + r * n, 1, n, weight, bias, eps);
}

/* Patch embedding: every p x p patch gathered in (channel, row, column) order, which is how the
 * conv weight is flattened, so the convolution is one matrix product. */
static r2gen_status patch_embed(const swin_model *m, const compute *cpu, const float *pixels,
                                swin_work *w, const swin_trace *trace, error *err)
{
    int p = m->patch_size, side = m->stages[0].side, size = m->image_size;
    int patch_len = 3 * p * p;
    for (int py = 0; py < side; py++)
        for (int px = 0; px < side; px++) {
            float *patch = w->hidden + ((size_t)py * side + px) * patch_len;
            for (int c = 0; c < 3; c++)
                for (int r = 0; r < p; r++)
                    memcpy(patch + (c * p + r) * p,
                           pixels + ((size_t)c * size + py * p + r) * size + (size_t)px * p,
                           (size_t)p * sizeof(float));
        }
    int64_t tokens = (int64_t)side * side;
    TRY(matmul(cpu, w->x, w->hidden, tokens, m->patch_embed, m->patch_embed_bias, err));
    trace_emit(trace, "patch_embeddings_conv", w->x, tokens, m->embed_dim);
    layer_norm_rows(cpu, w->x, w->x, tokens, m->embed_dim, m->patch_norm_weight,
                    m->patch_norm_bias, SWIN_FIXED_NORM_EPS);
    trace_emit(trace, "hidden_states_0", w->x, tokens, m->embed_dim);
    return R2GEN_OK;
}

/* Map position of each token of window `win`. A shifted block works on the map rolled by
 * (-shift, -shift) and rolls the result back, so window token (y, x) of the rolled map reads and
 * writes map position ((y + shift) % side, (x + shift) % side). */
static void window_sources(const swin_stage *st, int shift, int win, int32_t *sources)
{
    int per_row = st->side / st->window;
    int y0 = (win / per_row) * st->window, x0 = (win % per_row) * st->window;
    for (int i = 0; i < st->window * st->window; i++) {
        int y = (y0 + i / st->window + shift) % st->side;
        int x = (x0 + i % st->window + shift) % st->side;
        sources[i] = y * st->side + x;
    }
}

/* One head of one window: softmax(q kᵀ / sqrt(hd) + bias (+ mask)) · v into w->context. The
 * head's rows are gathered so both products are small dense GEMMs. They run on this thread only
 * and always through oneDNN, whose thread count is per calling thread; OpenBLAS's is
 * process-wide, and setting it from inside our parallel region would race. */
static void attend_head(const swin_stage *st, const swin_block *blk, const float *mask, int h,
                        const swin_work *w, const window_scratch *s)
{
    int t = st->window * st->window, dim = st->dim, n_heads = st->n_heads;
    int hd = dim / n_heads;
    float scale = sqrtf((float)hd);
    compute one = {1, GEMM_ONEDNN, 0};
    for (int j = 0; j < t; j++) {
        size_t at = (size_t)s->sources[j] * dim + h * hd;
        memcpy(s->queries + (size_t)j * hd, w->q + at, (size_t)hd * sizeof(float));
        memcpy(s->keys + (size_t)j * hd, w->k + at, (size_t)hd * sizeof(float));
        memcpy(s->values + (size_t)j * hd, w->v + at, (size_t)hd * sizeof(float));
    }
    gemm_f32(&one, t, t, hd, 1.0f, s->queries, hd, s->keys, hd, 1, 0.0f, s->scores, t);
    for (int i = 0; i < t; i++) {
        float *row = s->scores + (size_t)i * t;
        const int32_t *index = st->rel_pos_index + (size_t)i * t;
        for (int j = 0; j < t; j++)
            row[j] = row[j] / scale + blk->rel_pos_bias[index[j] * n_heads + h];
        if (mask)
            for (int j = 0; j < t; j++) row[j] += mask[(size_t)i * t + j];
        softmax(row, t);
    }
    gemm_f32(&one, t, hd, t, 1.0f, s->scores, t, s->values, hd, 0, 0.0f, s->out, hd);
    for (int i = 0; i < t; i++)
        memcpy(w->context + (size_t)s->sources[i] * dim + h * hd, s->out + (size_t)i * hd,
               (size_t)hd * sizeof(float));
}

/* Work items are (window, head) pairs, so even the last stage's single window spreads over the
 * threads; windows are disjoint token sets and heads disjoint columns, so every item writes its
 * own part of the context. */
static void window_attention(const compute *cpu, const swin_stage *st, const swin_block *blk,
                             int shift, const swin_work *w)
{
    int n_windows = (st->side / st->window) * (st->side / st->window);
    int t = st->window * st->window;
#pragma omp parallel for num_threads(cpu->n_threads) schedule(static)
    for (int item = 0; item < n_windows * st->n_heads; item++) {
        int win = item / st->n_heads;
        window_scratch s = thread_scratch(w, omp_get_thread_num());
        window_sources(st, shift, win, s.sources);
        const float *mask = shift > 0 ? st->shift_mask + (size_t)win * t * t : NULL;
        attend_head(st, blk, mask, item % st->n_heads, w, &s);
    }
}

/* x + attn(LN1(x)), then x + fc2(GELU(fc1(LN2(x)))). */
static r2gen_status block_forward(const swin_model *m, const compute *cpu, const swin_stage *st,
                                  const swin_block *blk, int shift, swin_work *w, error *err)
{
    int64_t tokens = (int64_t)st->side * st->side, dim = st->dim;
    layer_norm_rows(cpu, w->normed, w->x, tokens, dim, blk->norm1_weight, blk->norm1_bias,
                    m->eps);
    TRY(matmul(cpu, w->q, w->normed, tokens, blk->attn_q, blk->attn_q_bias, err));
    TRY(matmul(cpu, w->k, w->normed, tokens, blk->attn_k, blk->attn_k_bias, err));
    TRY(matmul(cpu, w->v, w->normed, tokens, blk->attn_v, blk->attn_v_bias, err));
    window_attention(cpu, st, blk, shift, w);
    TRY(matmul(cpu, w->normed, w->context, tokens, blk->attn_out, blk->attn_out_bias, err));
    add(w->x, w->normed, tokens * dim);

    layer_norm_rows(cpu, w->normed, w->x, tokens, dim, blk->norm2_weight, blk->norm2_bias,
                    m->eps);
    TRY(matmul(cpu, w->hidden, w->normed, tokens, blk->ffn_up, blk->ffn_up_bias, err));
    gelu_rows(cpu, w->hidden, tokens, st->ffn_dim);
    TRY(matmul(cpu, w->normed, w->hidden, tokens, blk->ffn_down, blk->ffn_down_bias, err));
    add(w->x, w->normed, tokens * dim);
    return R2GEN_OK;
}

/* Patch merging: each 2x2 cell becomes one token, the concatenation of its (row 0, col 0),
 * (row 1, col 0), (row 0, col 1), (row 1, col 1) tokens, then LayerNorm and the reduction. */
static r2gen_status patch_merge(const compute *cpu, const swin_stage *st, swin_work *w,
                                error *err)
{
    static const int cell[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    int half = st->side / 2, dim = st->dim;
    for (int y = 0; y < half; y++)
        for (int x = 0; x < half; x++) {
            float *merged = w->normed + ((size_t)y * half + x) * 4 * dim;
            for (int c = 0; c < 4; c++) {
                size_t src = (size_t)(2 * y + cell[c][0]) * st->side + 2 * x + cell[c][1];
                memcpy(merged + c * dim, w->x + src * dim, (size_t)dim * sizeof(float));
            }
        }
    int64_t tokens = (int64_t)half * half;
    layer_norm_rows(cpu, w->normed, w->normed, tokens, 4 * dim, st->merge_norm_weight,
                    st->merge_norm_bias, SWIN_FIXED_NORM_EPS);
    return matmul(cpu, w->x, w->normed, tokens, st->merge_reduction, NULL, err);
}

static r2gen_status run_stages(const swin_model *m, const compute *cpu, swin_work *w,
                               const swin_trace *trace, error *err)
{
    char name[48];
    for (int s = 0; s < m->n_stages; s++) {
        const swin_stage *st = &m->stages[s];
        int64_t tokens = (int64_t)st->side * st->side;
        for (int b = 0; b < st->depth; b++) {
            TRY(block_forward(m, cpu, st, &st->blocks[b], b % 2 ? st->shift : 0, w, err));
            snprintf(name, sizeof name, "stage%d_block%d", s, b);
            trace_emit(trace, name, w->x, tokens, st->dim);
        }
        snprintf(name, sizeof name, "hidden_states_%d", s + 1);
        if (st->merge_reduction) {
            TRY(patch_merge(cpu, st, w, err));
            trace_emit(trace, name, w->x, tokens / 4, 2 * st->dim);
        } else {
            trace_emit(trace, name, w->x, tokens, st->dim);
        }
    }
    return R2GEN_OK;
}

r2gen_status swin_encode(const swin_model *m, const compute *cpu, const float *pixels_chw,
                         float *last_hidden, const swin_trace *trace, error *err)
{
    swin_work w;
    TRY(work_alloc(m, cpu->n_threads, &w, err));
    r2gen_status status = patch_embed(m, cpu, pixels_chw, &w, trace, err);
    if (status == R2GEN_OK) status = run_stages(m, cpu, &w, trace, err);
    if (status == R2GEN_OK) {
        layer_norm_rows(cpu, last_hidden, w.x, m->n_tokens, m->num_features, m->norm_weight,
                        m->norm_bias, m->eps);
        trace_emit(trace, "last_hidden_state", last_hidden, m->n_tokens, m->num_features);
    }
    work_free(&w);
    return status;
}
