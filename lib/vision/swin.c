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

/* HF's relative_position_index: for query token i = (yi, xi) and key j = (yj, xj), row-major in
 * the window, the table row (yi - yj + w - 1) * (2w - 1) + (xi - xj + w - 1). The bias of every
 * (head, i, j) is gathered once here, so attention reads it contiguously. */
static r2gen_status expand_rel_bias(const swin_stage *st, const float *table, float **out,
                                    error *err)
{
    int w = st->window, t = w * w, n_heads = st->n_heads;
    float *bias = malloc((size_t)n_heads * t * t * sizeof *bias);
    if (!bias) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for Swin biases");
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < t; i++)
            for (int j = 0; j < t; j++) {
                int row = (i / w - j / w + w - 1) * (2 * w - 1) + (i % w - j % w + w - 1);
                bias[((size_t)h * t + i) * t + j] = table[row * n_heads + h];
            }
    *out = bias;
    return R2GEN_OK;
}

/* A Linear layer of the encoder. When the layer packed its weights into oneDNN's layout, the
 * file's copy is not read again, so its pages are given back (the packed copy replaces them). */
static r2gen_status init_linear(const gguf_file *f, linear *l, int n_parts,
                                const tensor *const *parts, const float *const *biases,
                                int64_t m, error *err)
{
    TRY(linear_init(l, n_parts, parts, biases, m, err));
    if (l->packed)
        for (int p = 0; p < n_parts; p++) gguf_release_tensor(f, parts[p]);
    return R2GEN_OK;
}

static r2gen_status load_block(const gguf_file *f, const swin_stage *st, int s, int b,
                               swin_block *blk, error *err)
{
    char prefix[96], name[160];
    snprintf(prefix, sizeof prefix, "r2gen.vision.layers.%d.blocks.%d.", s, b);
    int64_t c = st->dim, ffn = st->ffn_dim, tokens = (int64_t)st->side * st->side;
    const tensor *qkv[3], *out, *up, *down;
    const float *qkv_bias[3], *out_bias, *up_bias, *down_bias, *table;
    TRY(load_norm(f, prefix, "norm1", c, &blk->norm1_weight, &blk->norm1_bias, err));
    TRY(load_linear(f, prefix, "attn_q", c, c, &qkv[0], &qkv_bias[0], err));
    TRY(load_linear(f, prefix, "attn_k", c, c, &qkv[1], &qkv_bias[1], err));
    TRY(load_linear(f, prefix, "attn_v", c, c, &qkv[2], &qkv_bias[2], err));
    TRY(load_linear(f, prefix, "attn_out", c, c, &out, &out_bias, err));
    int64_t table_ne[2] = {st->n_heads, (2 * st->window - 1) * (2 * st->window - 1)};
    TRY(load_f32(f, join(name, sizeof name, prefix, "rel_pos_bias"), 2, table_ne, &table, err));
    TRY(load_norm(f, prefix, "norm2", c, &blk->norm2_weight, &blk->norm2_bias, err));
    TRY(load_linear(f, prefix, "ffn_up", c, ffn, &up, &up_bias, err));
    TRY(load_linear(f, prefix, "ffn_down", ffn, c, &down, &down_bias, err));
    TRY(init_linear(f, &blk->qkv, 3, qkv, qkv_bias, tokens, err));
    TRY(init_linear(f, &blk->attn_out, 1, &out, &out_bias, tokens, err));
    TRY(init_linear(f, &blk->ffn_up, 1, &up, &up_bias, tokens, err));
    TRY(init_linear(f, &blk->ffn_down, 1, &down, &down_bias, tokens, err));
    return expand_rel_bias(st, table, &blk->rel_bias, err);
}

/* Window order: the r-th token of the windows laid one after another is map token order[r]. A
 * shifted block works on the map rolled by (-shift, -shift) and rolls the result back, so window
 * token (y, x) of the rolled map is map token ((y + shift) % side, (x + shift) % side). */
static void fill_window_order(int32_t *order, const swin_stage *st, int shift)
{
    int w = st->window, t = w * w, per_row = st->side / w;
    for (int win = 0; win < per_row * per_row; win++)
        for (int i = 0; i < t; i++) {
            int y = ((win / per_row) * w + i / w + shift) % st->side;
            int x = ((win % per_row) * w + i % w + shift) % st->side;
            order[win * t + i] = y * st->side + x;
        }
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

/* Values of the first stage's token map (tokens x channels) the encoder accepts: 2^24 floats are
 * 64 MiB per activation buffer, 40x Swin-base at 224. */
#define SWIN_MAX_STAGE0_VALUES ((uint64_t)1 << 24)

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
    /* The encode buffers grow with the first stage's token map: bound it here, from metadata
     * alone, so a hostile file cannot ask for gigabytes (Swin-base at 224 needs 401,408 values). */
    uint64_t side = image_size / patch_size;
    if (side * side * embed_dim > SWIN_MAX_STAGE0_VALUES || *mlp_ratio > 16.0f)
        return error_set(err, R2GEN_ERR_UNSUPPORTED,
                         "r2gen.vision: a %ux%u input with patch %u and width %u is larger than "
                         "this library encodes",
                         image_size, image_size, patch_size, embed_dim);
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
    size_t tokens = (size_t)st->side * st->side;
    st->blocks = calloc((size_t)st->depth, sizeof *st->blocks);
    st->window_order[0] = malloc(2 * tokens * sizeof *st->window_order[0]);
    int n_windows = (st->side / st->window) * (st->side / st->window);
    if (st->shift > 0) st->shift_mask = malloc((size_t)n_windows * t * t * sizeof *st->shift_mask);
    if (!st->blocks || !st->window_order[0] || (st->shift > 0 && !st->shift_mask))
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory loading the Swin encoder");
    st->window_order[1] = st->window_order[0] + tokens;
    fill_window_order(st->window_order[0], st, 0);
    fill_window_order(st->window_order[1], st, st->shift);
    if (st->shift_mask) fill_shift_mask(st->shift_mask, st->side, st->window, st->shift);

    for (int b = 0; b < st->depth; b++) TRY(load_block(f, st, s, b, &st->blocks[b], err));
    if (last) return R2GEN_OK;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "r2gen.vision.layers.%d.merge.", s);
    TRY(load_norm(f, prefix, "norm", 4 * (int64_t)st->dim, &st->merge_norm_weight,
                  &st->merge_norm_bias, err));
    const tensor *reduction;
    TRY(load_matrix(f, prefix, "reduction.weight", 4 * (int64_t)st->dim, 2 * (int64_t)st->dim,
                    &reduction, err));
    st->has_merge = 1;
    return init_linear(f, &st->merge_reduction, 1, &reduction, NULL, (int64_t)tokens / 4, err);
}

static r2gen_status load_model(const gguf_file *f, swin_model *m, error *err)
{
    float mlp_ratio;
    TRY(read_config(f, m, &mlp_ratio, err));
    TRY(plan_stages(m, mlp_ratio, err));
    const char *prefix = "r2gen.vision.";
    int64_t patch_len = 3 * (int64_t)m->patch_size * m->patch_size;
    const tensor *patch_embed;
    const float *patch_embed_bias;
    TRY(load_linear(f, prefix, "patch_embed", patch_len, m->embed_dim, &patch_embed,
                    &patch_embed_bias, err));
    TRY(init_linear(f, &m->patch_embed, 1, &patch_embed, &patch_embed_bias,
                    (int64_t)m->stages[0].side * m->stages[0].side, err));
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

static void free_block(swin_block *blk)
{
    linear_free(&blk->qkv);
    linear_free(&blk->attn_out);
    linear_free(&blk->ffn_up);
    linear_free(&blk->ffn_down);
    free(blk->rel_bias);
}

void swin_free(swin_model *m)
{
    linear_free(&m->patch_embed);
    for (int s = 0; s < SWIN_MAX_STAGES; s++) {
        swin_stage *st = &m->stages[s];
        for (int b = 0; st->blocks && b < st->depth; b++) free_block(&st->blocks[b]);
        free(st->blocks);
        free(st->window_order[0]);
        free(st->shift_mask);
        linear_free(&st->merge_reduction);
    }
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------------------------------------
 * Encoding
 *
 * Each block works in window order (see fill_window_order): LayerNorm 1 gathers the rows into it,
 * so the projections, the attention of a window and attn_out read and write contiguous rows, and
 * the residual addition scatters them back to map order, together with LayerNorm 2. The MLP runs
 * in map order and adds into the residual stream inside its second product. */

/* Attention works on blocks of ATTN_LANES values: one AVX-512 register (two or four smaller ones
 * in the other SIMD_CLONES builds). ATTN_ROWS query rows go together, so that every block of keys
 * or values read feeds ATTN_ROWS independent sums, which hides the latency of the FMAs. Rows are
 * padded to whole blocks. */
#define ATTN_LANES 16
#define ATTN_ROWS 4
typedef float attn_lanes __attribute__((vector_size(ATTN_LANES * sizeof(float))));
/* The same for reading ATTN_LANES floats at any float-aligned address. */
typedef float attn_lanes_at __attribute__((vector_size(ATTN_LANES * sizeof(float)), aligned(4),
                                          may_alias));

static size_t padded(size_t n) { return (n + ATTN_LANES - 1) / ATTN_LANES * ATTN_LANES; }

/* Per thread: keys transposed (head_dim x padded t), values (t x padded head_dim), ATTN_ROWS rows
 * of scores (padded t each). */
static size_t attention_scratch_floats(const swin_stage *st)
{
    size_t t = (size_t)st->window * st->window, hd = (size_t)(st->dim / st->n_heads);
    return hd * padded(t) + t * padded(hd) + ATTN_ROWS * padded(t);
}

/* Buffers of one encode call, sized for the widest stage. */
typedef struct swin_work {
    float *x;       /* residual stream, map order: tokens x dim */
    float *normed;  /* LayerNorm 1 output, attn_out output (window order), merge concatenation */
    float *qkv;     /* tokens x 3 dim, window order */
    float *context; /* attention output (window order), then LayerNorm 2 output (map order) */
    float *hidden;  /* MLP hidden (tokens x ffn_dim); also the gathered patches */
    float *thread_floats; /* per thread: attention scratch (attention_scratch_floats) */
    size_t thread_stride; /* floats per thread */
    linear_runner runner;
} swin_work;

static void work_free(swin_work *w)
{
    free(w->x);
    free(w->normed);
    free(w->qkv);
    free(w->context);
    free(w->hidden);
    free(w->thread_floats);
    linear_runner_free(&w->runner);
}

static r2gen_status work_alloc(const swin_model *m, const compute *cpu, swin_work *w, error *err)
{
    size_t stream = 0, hidden = 0;
    memset(w, 0, sizeof *w);
    for (int s = 0; s < m->n_stages; s++) {
        const swin_stage *st = &m->stages[s];
        size_t tokens = (size_t)st->side * st->side;
        if (tokens * st->dim > stream) stream = tokens * st->dim;
        if (tokens * st->ffn_dim > hidden) hidden = tokens * st->ffn_dim;
        if (attention_scratch_floats(st) > w->thread_stride)
            w->thread_stride = attention_scratch_floats(st);
    }
    size_t patches = (size_t)m->stages[0].side * m->stages[0].side * 3 * m->patch_size *
                     m->patch_size;
    if (patches > hidden) hidden = patches;
    w->x = malloc(stream * sizeof(float));
    w->normed = malloc(stream * sizeof(float));
    w->qkv = malloc(3 * stream * sizeof(float));
    w->context = malloc(stream * sizeof(float));
    w->hidden = malloc(hidden * sizeof(float));
    w->thread_floats = malloc((size_t)cpu->n_threads * w->thread_stride * sizeof(float));
    if (!w->x || !w->normed || !w->qkv || !w->context || !w->hidden || !w->thread_floats) {
        work_free(w);
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for Swin activations");
    }
    r2gen_status status = linear_runner_init(&w->runner, cpu, err);
    if (status != R2GEN_OK) work_free(w);
    return status;
}

static void trace_emit(const swin_trace *trace, const char *name, const float *data,
                       int64_t n_tokens, int64_t dim)
{
    if (trace && trace->fn) trace->fn(trace->user, name, data, n_tokens, dim);
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
    TRY(linear_forward(&w->runner, &m->patch_embed, w->x, w->hidden, tokens, LINEAR_STORE, err));
    trace_emit(trace, "patch_embeddings_conv", w->x, tokens, m->embed_dim);
    layer_norm_rows(cpu, w->x, w->x, tokens, m->embed_dim, m->patch_norm_weight,
                    m->patch_norm_bias, SWIN_FIXED_NORM_EPS);
    trace_emit(trace, "hidden_states_0", w->x, tokens, m->embed_dim);
    return R2GEN_OK;
}

/* One head of one window: softmax(q kᵀ / sqrt(hd) + bias (+ mask)) · v. `qkv` and `context` point
 * at the window's first row. */
SIMD_CLONES static void attend_head(const swin_stage *st, const float *bias, const float *mask,
                                    int h, const float *qkv, float *context, float *scratch)
{
    int t = st->window * st->window, dim = st->dim, hd = dim / st->n_heads;
    int tp = (int)padded((size_t)t), hdp = (int)padded((size_t)hd);
    size_t stride = 3 * (size_t)dim;
    const float *q = qkv + h * hd, *k = qkv + dim + h * hd, *v = qkv + 2 * dim + h * hd;
    float *keys_t = scratch, *values = keys_t + (size_t)hd * tp, *scores = values + (size_t)t * hdp;
    float scale = sqrtf((float)hd);
    for (int d = 0; d < hd; d++)
        for (int j = 0; j < tp; j++) keys_t[d * tp + j] = j < t ? k[j * stride + d] : 0.0f;
    for (int j = 0; j < t; j++)
        for (int d = 0; d < hdp; d++) values[j * hdp + d] = d < hd ? v[j * stride + d] : 0.0f;
    for (int i0 = 0; i0 < t; i0 += ATTN_ROWS) {
        /* A last, partial group repeats row t - 1 in its unused lanes; those are never stored. */
        int n_rows = t - i0 < ATTN_ROWS ? t - i0 : ATTN_ROWS;
        const float *queries[ATTN_ROWS];
        for (int r = 0; r < ATTN_ROWS; r++) queries[r] = q + (i0 + (r < n_rows ? r : n_rows - 1)) * stride;
        for (int j0 = 0; j0 < tp; j0 += ATTN_LANES) {
            attn_lanes acc[ATTN_ROWS] = {{0}};
            for (int d = 0; d < hd; d++) {
                attn_lanes key = *(const attn_lanes_at *)(keys_t + d * tp + j0);
                for (int r = 0; r < ATTN_ROWS; r++) acc[r] += queries[r][d] * key;
            }
            for (int r = 0; r < ATTN_ROWS; r++) memcpy(scores + r * tp + j0, &acc[r], sizeof acc[r]);
        }
        for (int r = 0; r < ATTN_ROWS; r++) {
            float *row = scores + r * tp;
            size_t i = (size_t)(i0 + (r < n_rows ? r : n_rows - 1));
            for (int j = 0; j < t; j++) row[j] = row[j] / scale + bias[i * t + j];
            if (mask)
                for (int j = 0; j < t; j++) row[j] += mask[i * t + j];
            softmax(row, t);
        }
        for (int d0 = 0; d0 < hd; d0 += ATTN_LANES) {
            attn_lanes acc[ATTN_ROWS] = {{0}};
            for (int j = 0; j < t; j++) {
                attn_lanes value = *(const attn_lanes_at *)(values + j * hdp + d0);
                for (int r = 0; r < ATTN_ROWS; r++) acc[r] += scores[r * tp + j] * value;
            }
            int n = hd - d0 < ATTN_LANES ? hd - d0 : ATTN_LANES;
            for (int r = 0; r < n_rows; r++)
                memcpy(context + (size_t)(i0 + r) * dim + h * hd + d0, &acc[r],
                       (size_t)n * sizeof(float));
        }
    }
}

/* Work items are (window, head) pairs, so even the last stage's single window spreads over the
 * threads; windows are disjoint rows and heads disjoint columns of the context. */
static void window_attention(const compute *cpu, const swin_stage *st, const swin_block *blk,
                             int shifted, const swin_work *w)
{
    int n_windows = (st->side / st->window) * (st->side / st->window);
    int t = st->window * st->window;
    size_t window_rows = (size_t)t * st->dim;
#pragma omp parallel for num_threads(cpu->n_threads) schedule(static)
    for (int item = 0; item < n_windows * st->n_heads; item++) {
        int win = item / st->n_heads, h = item % st->n_heads;
        const float *mask = shifted ? st->shift_mask + (size_t)win * t * t : NULL;
        attend_head(st, blk->rel_bias + (size_t)h * t * t, mask, h,
                    w->qkv + 3 * win * window_rows, w->context + win * window_rows,
                    w->thread_floats + (size_t)omp_get_thread_num() * w->thread_stride);
    }
}

/* x + attn(LN1(x)), then x + fc2(GELU(fc1(LN2(x)))). */
static r2gen_status block_forward(const swin_model *m, const compute *cpu, const swin_stage *st,
                                  const swin_block *blk, int shifted, swin_work *w, error *err)
{
    int64_t tokens = (int64_t)st->side * st->side, dim = st->dim;
    const int32_t *order = st->window_order[shifted];
#pragma omp parallel for num_threads(cpu->n_threads) schedule(static)
    for (int64_t r = 0; r < tokens; r++)
        layer_norm(w->normed + r * dim, w->x + order[r] * dim, 1, dim, blk->norm1_weight,
                   blk->norm1_bias, m->eps);
    TRY(linear_forward(&w->runner, &blk->qkv, w->qkv, w->normed, tokens, LINEAR_STORE, err));
    window_attention(cpu, st, blk, shifted, w);
    TRY(linear_forward(&w->runner, &blk->attn_out, w->normed, w->context, tokens, LINEAR_STORE,
                       err));
#pragma omp parallel for num_threads(cpu->n_threads) schedule(static)
    for (int64_t r = 0; r < tokens; r++) {
        float *token = w->x + order[r] * dim;
        add(token, w->normed + r * dim, dim);
        layer_norm(w->context + order[r] * dim, token, 1, dim, blk->norm2_weight,
                   blk->norm2_bias, m->eps);
    }
    return linear_mlp(&w->runner, &blk->ffn_up, &blk->ffn_down, w->x, w->context, tokens,
                      w->hidden, err);
}

/* Patch merging: each 2x2 cell becomes one token, the concatenation of its (row 0, col 0),
 * (row 1, col 0), (row 0, col 1), (row 1, col 1) tokens, then LayerNorm and the reduction. */
static r2gen_status patch_merge(const compute *cpu, const swin_stage *st, swin_work *w,
                                error *err)
{
    static const int cell[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    int half = st->side / 2, dim = st->dim;
    int64_t tokens = (int64_t)half * half;
#pragma omp parallel for num_threads(cpu->n_threads) schedule(static)
    for (int64_t token = 0; token < tokens; token++) {
        int64_t y = token / half, x = token % half;
        float *merged = w->normed + token * 4 * dim;
        for (int c = 0; c < 4; c++) {
            size_t src = (size_t)(2 * y + cell[c][0]) * st->side + 2 * x + cell[c][1];
            memcpy(merged + c * dim, w->x + src * dim, (size_t)dim * sizeof(float));
        }
        layer_norm(merged, merged, 1, 4 * dim, st->merge_norm_weight, st->merge_norm_bias,
                   SWIN_FIXED_NORM_EPS);
    }
    return linear_forward(&w->runner, &st->merge_reduction, w->x, w->normed, tokens,
                          LINEAR_STORE, err);
}

static r2gen_status run_stages(const swin_model *m, const compute *cpu, swin_work *w,
                               const swin_trace *trace, error *err)
{
    char name[48];
    for (int s = 0; s < m->n_stages; s++) {
        const swin_stage *st = &m->stages[s];
        int64_t tokens = (int64_t)st->side * st->side;
        for (int b = 0; b < st->depth; b++) {
            TRY(block_forward(m, cpu, st, &st->blocks[b], b % 2 && st->shift > 0, w, err));
            snprintf(name, sizeof name, "stage%d_block%d", s, b);
            trace_emit(trace, name, w->x, tokens, st->dim);
        }
        snprintf(name, sizeof name, "hidden_states_%d", s + 1);
        if (st->has_merge) {
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
    TRY(work_alloc(m, cpu, &w, err));
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
