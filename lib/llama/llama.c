#include "llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/quant.h"
#include "kv_cache.h"
#include "ops/matmul.h"
#include "ops/ops.h"
#include "ops/projection.h"

typedef struct llama_layer {
    const float *attn_norm, *ffn_norm;
    projection qkv;     /* attn_q, attn_k, attn_v */
    projection o;       /* attn_output */
    projection gate_up; /* ffn_gate, ffn_up */
    projection down;    /* ffn_down */
} llama_layer;

struct llama_model {
    llama_config config;
    const tensor *token_embd;
    projection output;
    const float *output_norm;
    llama_layer *layers;
    void *packed;        /* the packed tiles of every packed projection (anonymous mapping) */
    size_t packed_bytes; /* its size; 0 when nothing is packed */
};

struct llama_session {
    const llama_model *model;
    int max_rows, max_positions;
    size_t n_bytes;
    kv_cache cache;
    int32_t *positions;          /* [B]: position of each activation row */
    float *arena;                /* every float buffer below lives in this one allocation */
    float *rope_cos, *rope_sin;  /* [P][head_dim / 2] */
    float *x;                    /* [B][n_embd] residual stream */
    float *xb;                   /* [B][n_embd] normed input of a block, then its output */
    float *q, *att;              /* [B][n_heads * head_dim] queries, attention output */
    float *k, *v;                /* [B][n_kv_heads * head_dim] */
    float *gate, *up;            /* [B][n_ff] */
    float *scores;               /* [n_heads * max(C, R)][P] attention weights */
};

/* ---- loading ---- */

static r2gen_status read_int(const gguf_file *f, const char *key, int has_default, uint32_t fallback,
                             int *out, error *err)
{
    uint32_t value;
    r2gen_status st = has_default ? gguf_get_u32_or(f, key, fallback, &value, err)
                                  : gguf_get_u32(f, key, &value, err);
    if (st != R2GEN_OK) return st;
    if (value == 0 || value > (1u << 24))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' = %u is out of range", key,
                         value);
    *out = (int)value;
    return R2GEN_OK;
}

static r2gen_status check_architecture(const gguf_file *f, error *err)
{
    const gguf_value *arch = gguf_find(f, "general.architecture");
    if (!arch || arch->type != GGUF_STRING || arch->as.str.len != 5 ||
        memcmp(arch->as.str.data, "llama", 5) != 0)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "general.architecture is not \"llama\": no LLaMA in this file");
    return R2GEN_OK;
}

static r2gen_status read_config(const gguf_file *f, llama_config *c, error *err)
{
    int rope_dim = 0;
    r2gen_status st = check_architecture(f, err);
    if (st == R2GEN_OK) st = read_int(f, "llama.context_length", 0, 0, &c->n_ctx, err);
    if (st == R2GEN_OK) st = read_int(f, "llama.embedding_length", 0, 0, &c->n_embd, err);
    if (st == R2GEN_OK) st = read_int(f, "llama.block_count", 0, 0, &c->n_layers, err);
    if (st == R2GEN_OK) st = read_int(f, "llama.feed_forward_length", 0, 0, &c->n_ff, err);
    if (st == R2GEN_OK) st = read_int(f, "llama.attention.head_count", 0, 0, &c->n_heads, err);
    if (st == R2GEN_OK)
        st = read_int(f, "llama.attention.head_count_kv", 1, (uint32_t)c->n_heads, &c->n_kv_heads,
                      err);
    if (st == R2GEN_OK)
        st = gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &c->rms_eps, err);
    if (st == R2GEN_OK) st = gguf_get_f32_or(f, "llama.rope.freq_base", 10000.0f, &c->rope_base, err);
    if (st != R2GEN_OK) return st;
    if (c->n_embd % c->n_heads != 0 || (c->n_embd / c->n_heads) % 2 != 0)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "embedding_length %d does not split into %d heads of even size", c->n_embd,
                         c->n_heads);
    c->head_dim = c->n_embd / c->n_heads;
    if (c->n_heads % c->n_kv_heads != 0)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "head_count %d is not a multiple of head_count_kv %d",
                         c->n_heads, c->n_kv_heads);
    st = read_int(f, "llama.rope.dimension_count", 1, (uint32_t)c->head_dim, &rope_dim, err);
    if (st != R2GEN_OK) return st;
    if (rope_dim != c->head_dim)
        return error_set(err, R2GEN_ERR_UNSUPPORTED,
                         "rope.dimension_count %d differs from the head size %d", rope_dim,
                         c->head_dim);
    if (!(c->rms_eps > 0.0f) || !(c->rope_base > 1.0f))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "rms epsilon %g or rope base %g out of range",
                         c->rms_eps, c->rope_base);
    return R2GEN_OK;
}

/* A Linear weight of PyTorch shape [n_out, n_in]. */
static r2gen_status require_matrix(const gguf_file *f, const char *name, int n_in, int n_out,
                                   const tensor **out, error *err)
{
    const int64_t ne[2] = {n_in, n_out};
    return gguf_require_tensor(f, name, GGUF_ALLOW_ANY, 2, ne, out, err);
}

static r2gen_status require_norm(const gguf_file *f, const char *name, int n, const float **out,
                                 error *err)
{
    const int64_t ne[1] = {n};
    const tensor *t;
    r2gen_status st = gguf_require_tensor(f, name, GGUF_ALLOW_F32, 1, ne, &t, err);
    *out = st == R2GEN_OK ? t->data : NULL;
    return st;
}

/* The projections' tensors are checked here and packed later (pack_projections). */
static r2gen_status load_layer(const gguf_file *f, const llama_config *c, int i, llama_layer *l,
                               error *err)
{
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    const tensor *qkv[3], *o, *gate_up[2], *down;
    char name[64];
#define LAYER_NAME(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, i), name)
    r2gen_status st = require_norm(f, LAYER_NAME("attn_norm.weight"), c->n_embd, &l->attn_norm, err);
    if (st == R2GEN_OK) st = require_matrix(f, LAYER_NAME("attn_q.weight"), c->n_embd, q_dim, &qkv[0], err);
    if (st == R2GEN_OK) st = require_matrix(f, LAYER_NAME("attn_k.weight"), c->n_embd, kv_dim, &qkv[1], err);
    if (st == R2GEN_OK) st = require_matrix(f, LAYER_NAME("attn_v.weight"), c->n_embd, kv_dim, &qkv[2], err);
    if (st == R2GEN_OK)
        st = require_matrix(f, LAYER_NAME("attn_output.weight"), q_dim, c->n_embd, &o, err);
    if (st == R2GEN_OK) st = require_norm(f, LAYER_NAME("ffn_norm.weight"), c->n_embd, &l->ffn_norm, err);
    if (st == R2GEN_OK)
        st = require_matrix(f, LAYER_NAME("ffn_gate.weight"), c->n_embd, c->n_ff, &gate_up[0], err);
    if (st == R2GEN_OK)
        st = require_matrix(f, LAYER_NAME("ffn_up.weight"), c->n_embd, c->n_ff, &gate_up[1], err);
    if (st == R2GEN_OK)
        st = require_matrix(f, LAYER_NAME("ffn_down.weight"), c->n_ff, c->n_embd, &down, err);
#undef LAYER_NAME
    if (st != R2GEN_OK) return st;
    projection_init(&l->qkv, 3, qkv);
    projection_init(&l->o, 1, &o);
    projection_init(&l->gate_up, 2, gate_up);
    projection_init(&l->down, 1, &down);
    return R2GEN_OK;
}

/* Every projection of the model, for packing. */
static size_t list_projections(llama_model *m, projection **out)
{
    size_t n = 0;
    for (int i = 0; i < m->config.n_layers; i++) {
        llama_layer *l = &m->layers[i];
        projection *of_layer[] = {&l->qkv, &l->o, &l->gate_up, &l->down};
        for (size_t k = 0; k < sizeof of_layer / sizeof of_layer[0]; k++) {
            if (out) out[n] = of_layer[k];
            n++;
        }
    }
    if (out) out[n] = &m->output;
    return n + 1;
}

/* Packs the projections the packed kernels can run into one anonymous mapping (huge pages where
 * the kernel gives them: decode steps stream it whole) and gives the file's pages of their
 * tensors back, so the weights are resident once. */
static r2gen_status pack_projections(const gguf_file *f, llama_model *m, int n_threads, error *err)
{
    size_t n = list_projections(m, NULL);
    projection **all = malloc(n * sizeof *all);
    if (!all) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    list_projections(m, all);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += projection_packed_bytes(all[i]);
    if (total > 0) {
        void *memory = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) {
            free(all);
            return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes of packed weights",
                             total);
        }
        madvise(memory, total, MADV_HUGEPAGE);
        m->packed = memory;
        m->packed_bytes = total;
    }
    for (size_t i = 0, at = 0; i < n; i++) {
        size_t bytes = projection_packed_bytes(all[i]);
        if (bytes == 0) continue;
        projection_pack(all[i], (char *)m->packed + at, n_threads);
        for (int k = 0; k < all[i]->n_parts; k++)
            if (all[i]->part_packed[k]) gguf_release_tensor(f, all[i]->parts[k]);
        at += bytes;
    }
    free(all);
    return R2GEN_OK;
}

r2gen_status llama_load(const gguf_file *f, int n_threads, llama_model **out, error *err)
{
    *out = NULL;
    llama_model *m = calloc(1, sizeof *m);
    if (!m) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    llama_config *c = &m->config;
    r2gen_status st = read_config(f, c, err);
    if (st == R2GEN_OK) {
        /* The vocabulary size is the embedding's row count; everything else is checked against it. */
        const tensor *embd = gguf_find_tensor(f, "token_embd.weight");
        c->n_vocab = embd && embd->ne[1] > 0 && embd->ne[1] <= INT32_MAX ? (int)embd->ne[1] : 1;
        st = require_matrix(f, "token_embd.weight", c->n_embd, c->n_vocab, &m->token_embd, err);
    }
    const tensor *output = NULL;
    if (st == R2GEN_OK) st = require_matrix(f, "output.weight", c->n_embd, c->n_vocab, &output, err);
    if (st == R2GEN_OK) projection_init(&m->output, 1, &output);
    if (st == R2GEN_OK) st = require_norm(f, "output_norm.weight", c->n_embd, &m->output_norm, err);
    if (st == R2GEN_OK) {
        m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
        if (!m->layers) st = error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int i = 0; st == R2GEN_OK && i < c->n_layers; i++) st = load_layer(f, c, i, &m->layers[i], err);
    if (st == R2GEN_OK) st = pack_projections(f, m, n_threads, err);
    if (st != R2GEN_OK) {
        llama_free(m);
        return error_prefix(err, "llama: ");
    }
    *out = m;
    return R2GEN_OK;
}

void llama_free(llama_model *m)
{
    if (!m) return;
    if (m->packed) munmap(m->packed, m->packed_bytes);
    free(m->layers);
    free(m);
}

const llama_config *llama_get_config(const llama_model *m) { return &m->config; }

r2gen_status llama_embed_tokens(const llama_model *m, const int32_t *ids, size_t n, float *out,
                                error *err)
{
    const tensor *embd = m->token_embd;
    int n_embd = m->config.n_embd;
    const type_kernels *tk = kernels_for_type(kernels_select(), embd->type);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->config.n_vocab)
            return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "token id %d is outside the vocabulary (%d)",
                             (int)ids[i], m->config.n_vocab);
        const void *row = tensor_row(embd, ids[i]);
        float *dst = out + i * (size_t)n_embd;
        if (tk)
            tk->to_float(row, dst, n_embd);
        else
            memcpy(dst, row, (size_t)n_embd * sizeof(float));
    }
    return R2GEN_OK;
}

/* ---- session ---- */

static int max_int(int a, int b) { return a > b ? a : b; }
static int min_int(int a, int b) { return a < b ? a : b; }

/* Walks the session's float buffers in one table, so that sizing (s->arena NULL: only count) and
 * carving them out of the arena cannot disagree. Returns the number of floats. */
static size_t layout_arena(const llama_config *c, int max_rows, int max_positions, llama_session *s)
{
    size_t rows = (size_t)max_int(max_positions, max_rows);
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t score_rows = (size_t)c->n_heads *
                        (size_t)max_int(min_int(max_positions, LLAMA_PREFILL_CHUNK), max_rows);
    struct { float **buffer; size_t n; } parts[] = {
        {&s->rope_cos, (size_t)max_positions * c->head_dim / 2},
        {&s->rope_sin, (size_t)max_positions * c->head_dim / 2},
        {&s->x, rows * c->n_embd},
        {&s->xb, rows * c->n_embd},
        {&s->q, rows * q_dim},
        {&s->att, rows * q_dim},
        {&s->k, rows * kv_dim},
        {&s->v, rows * kv_dim},
        {&s->gate, rows * c->n_ff},
        {&s->up, rows * c->n_ff},
        {&s->scores, score_rows * max_positions},
    };
    size_t at = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (s->arena) *parts[i].buffer = s->arena + at;
        at += parts[i].n;
    }
    return at;
}

static size_t positions_bytes(int max_rows, int max_positions)
{
    return (size_t)max_int(max_positions, max_rows) * sizeof(int32_t);
}

size_t llama_session_size(const llama_config *c, int max_rows, int max_positions, kv_type type)
{
    llama_session counting = {0};
    return kv_cache_size(c->n_layers, c->n_kv_heads * c->head_dim, max_rows, max_positions, type) +
           positions_bytes(max_rows, max_positions) +
           layout_arena(c, max_rows, max_positions, &counting) * sizeof(float);
}

size_t llama_session_bytes(const llama_session *s) { return s->n_bytes; }

/* cos and sin of position p times inv_freq[i], with HF's float32 rounding at every step:
 * inv_freq[i] = 1 / base^(2i / d), angle = float32(p) * inv_freq[i]. */
static void fill_rope_tables(llama_session *s)
{
    const llama_config *c = &s->model->config;
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        float inv_freq = 1.0f / powf(c->rope_base, (float)(2 * i) / (float)c->head_dim);
        for (int p = 0; p < s->max_positions; p++) {
            float angle = (float)p * inv_freq;
            s->rope_cos[(size_t)p * half + i] = cosf(angle);
            s->rope_sin[(size_t)p * half + i] = sinf(angle);
        }
    }
}

r2gen_status llama_session_create(const llama_model *m, int max_rows, int max_positions,
                                  kv_type type, llama_session **out, error *err)
{
    const llama_config *c = &m->config;
    *out = NULL;
    /* (cache slots are int32 indices, at most rows * positions of them) */
    if (max_rows < 1 || max_positions < 1 || max_positions > c->n_ctx ||
        (int64_t)max_rows * max_positions > INT32_MAX)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                         "session of %d rows x %d positions (need rows >= 1, 1 <= positions <= %d)",
                         max_rows, max_positions, c->n_ctx);
    if (type != KV_F32 && type != KV_F16)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "unknown KV cache type %d", (int)type);
    llama_session *s = calloc(1, sizeof *s);
    if (!s) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    s->model = m;
    s->max_rows = max_rows;
    s->max_positions = max_positions;
    r2gen_status st = kv_cache_init(&s->cache, c->n_layers, c->n_kv_heads * c->head_dim,
                                    c->head_dim, max_rows, max_positions, type, err);
    if (st != R2GEN_OK) {
        free(s);
        return st;
    }
    size_t arena_floats = layout_arena(c, max_rows, max_positions, s);
    s->arena = malloc(arena_floats * sizeof(float));
    s->positions = malloc(positions_bytes(max_rows, max_positions));
    if (!s->arena || !s->positions) {
        llama_session_free(s);
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for a session of %zu bytes",
                         llama_session_size(c, max_rows, max_positions, type));
    }
    layout_arena(c, max_rows, max_positions, s);
    s->n_bytes = llama_session_size(c, max_rows, max_positions, type);
    fill_rope_tables(s);
    *out = s;
    return R2GEN_OK;
}

void llama_session_free(llama_session *s)
{
    if (!s) return;
    kv_cache_free(&s->cache);
    free(s->arena);
    free(s->positions);
    free(s);
}

/* ---- forward ---- */

/* Rotates the adjacent pairs (2i, 2i + 1) of every head of one row at `position` (the
 * interleaved layout of GGUF q/k weights). */
static void apply_rope(const llama_session *s, float *row, int position, int n_heads)
{
    int head_dim = s->model->config.head_dim, half = head_dim / 2;
    const float *cos_p = s->rope_cos + (size_t)position * half;
    const float *sin_p = s->rope_sin + (size_t)position * half;
    for (int h = 0; h < n_heads; h++) {
        float *head = row + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            float a = head[2 * i], b = head[2 * i + 1];
            head[2 * i] = a * cos_p[i] - b * sin_p[i];
            head[2 * i + 1] = b * cos_p[i] + a * sin_p[i];
        }
    }
}

/* Row j's q and k rotated to its position, and its k and v into the cache slot of that row. */
static void rope_and_store(llama_session *s, int il, int j, int n_ctx)
{
    const llama_config *c = &s->model->config;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    float *k = s->k + j * kv_dim;
    apply_rope(s, s->q + j * q_dim, s->positions[j], c->n_heads);
    apply_rope(s, k, s->positions[j], c->n_kv_heads);
    int64_t slot = n_ctx == 0 ? j : kv_cache_step_slot(&s->cache, j);
    kv_cache_store(&s->cache, il, slot, k, s->v + j * kv_dim);
}

/* Causal self-attention of positions 0..n-1 over the fresh k and v: per head, in chunks of query
 * rows, scores = q·kᵀ / sqrt(d) as one product, masked softmax, then scores·v as another. */
static void attention_prefill(llama_session *s, const compute *cpu, int n)
{
    const llama_config *c = &s->model->config;
    int hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    int q_dim = c->n_heads * hd, kv_dim = c->n_kv_heads * hd;
    size_t scores_per_head =
        (size_t)max_int(min_int(s->max_positions, LLAMA_PREFILL_CHUNK), s->max_rows) * s->max_positions;
    float scale = 1.0f / sqrtf((float)hd);
    compute one_thread = *cpu; /* the heads are the parallel loop; the products inside run serially */
    one_thread.n_threads = 1;
#pragma omp parallel for num_threads(cpu->n_threads) schedule(dynamic)
    for (int h = 0; h < c->n_heads; h++) {
        float *scores = s->scores + (size_t)h * scores_per_head;
        const float *k = s->k + (size_t)(h / group) * hd, *v = s->v + (size_t)(h / group) * hd;
        for (int i0 = 0; i0 < n; i0 += LLAMA_PREFILL_CHUNK) {
            int rows = min_int(LLAMA_PREFILL_CHUNK, n - i0), keys = i0 + rows;
            gemm_f32(&one_thread, rows, keys, hd, scale, s->q + (size_t)i0 * q_dim + h * hd, q_dim,
                     k, kv_dim, 1, 0.0f, scores, keys);
            for (int i = 0; i < rows; i++) {
                float *row = scores + (size_t)i * keys;
                int visible = i0 + i + 1;
                softmax(row, visible);
                memset(row + visible, 0, (size_t)(keys - visible) * sizeof(float));
            }
            gemm_f32(&one_thread, rows, hd, keys, 1.0f, scores, keys, v, kv_dim, 0, 0.0f,
                     s->att + (size_t)i0 * q_dim + h * hd, q_dim);
        }
    }
}

/* One query per row and head against the row's history in the cache (prefix + its beam chain).
 * The heads are the parallel loop and each takes all the rows, so the keys and values of the
 * rows' shared prefix are read and converted once per head. */
static void attention_decode(llama_session *s, const compute *cpu, int layer, int n_rows, int n_ctx)
{
    const llama_config *c = &s->model->config;
    int hd = c->head_dim, group = c->n_heads / c->n_kv_heads, n_heads = c->n_heads;
    size_t row_stride = (size_t)n_heads * hd, scores_stride = (size_t)n_heads * s->max_positions;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for num_threads(cpu->n_threads) schedule(static)
    for (int h = 0; h < n_heads; h++) {
        float *scores = s->scores + (size_t)h * s->max_positions;
        kv_cache_scores(&s->cache, layer, h / group, s->q + (size_t)h * hd, row_stride, n_rows, n_ctx,
                        scale, scores, scores_stride);
        for (int r = 0; r < n_rows; r++) softmax(scores + r * scores_stride, n_ctx);
        kv_cache_mix_values(&s->cache, layer, h / group, scores, scores_stride, n_rows, n_ctx,
                            s->att + (size_t)h * hd, row_stride);
    }
}

/* Rows from which the element-wise steps between the products are split across the threads: a
 * prefill's 81 rows run them in parallel (serially they were 4% of its time, the other thread
 * waiting); a decode step's few rows are not worth the fork. */
#define LLAMA_PARALLEL_ROWS 16

/* One decoder layer over n activation rows in s->x. n_ctx == 0: a prefill of positions 0..n-1;
 * otherwise a decode step whose rows each see n_ctx cached positions (their own included). */
static r2gen_status layer_forward(llama_session *s, const compute *cpu, int il, int n, int n_ctx,
                                  error *err)
{
    const llama_config *c = &s->model->config;
    const llama_layer *l = &s->model->layers[il];
    const int n_embd = c->n_embd, n_ff = c->n_ff, parallel = n >= LLAMA_PARALLEL_ROWS;

    rms_norm(s->xb, s->x, n, n_embd, l->attn_norm, c->rms_eps);
    float *const qkv[] = {s->q, s->k, s->v};
    r2gen_status st = projection_forward(cpu, &l->qkv, s->xb, n, qkv, err);
    if (st != R2GEN_OK) return st;
#pragma omp parallel for num_threads(cpu->n_threads) if (parallel)
    for (int j = 0; j < n; j++) rope_and_store(s, il, j, n_ctx);
    if (n_ctx == 0)
        attention_prefill(s, cpu, n);
    else
        attention_decode(s, cpu, il, n, n_ctx);
    st = projection_forward(cpu, &l->o, s->att, n, &s->xb, err);
    if (st != R2GEN_OK) return st;

#pragma omp parallel for num_threads(cpu->n_threads) if (parallel)
    for (int j = 0; j < n; j++) {
        float *x = s->x + (size_t)j * n_embd, *xb = s->xb + (size_t)j * n_embd;
        add(x, xb, n_embd);
        rms_norm(xb, x, 1, n_embd, l->ffn_norm, c->rms_eps);
    }
    float *const gate_up[] = {s->gate, s->up};
    st = projection_forward(cpu, &l->gate_up, s->xb, n, gate_up, err);
    if (st != R2GEN_OK) return st;
#pragma omp parallel for num_threads(cpu->n_threads) if (parallel)
    for (int j = 0; j < n; j++) silu_mul(s->gate + (size_t)j * n_ff, s->up + (size_t)j * n_ff, n_ff);
    st = projection_forward(cpu, &l->down, s->gate, n, &s->xb, err);
    if (st != R2GEN_OK) return st;
#pragma omp parallel for num_threads(cpu->n_threads) if (parallel)
    for (int j = 0; j < n; j++) add(s->x + (size_t)j * n_embd, s->xb + (size_t)j * n_embd, n_embd);
    return R2GEN_OK;
}

/* Final RMSNorm of m rows of x into normed, then lm_head into logits[m][n_vocab]. */
static r2gen_status output_logits(const llama_session *s, const compute *cpu, const float *x, int m,
                                  float *normed, float *logits, error *err)
{
    const llama_model *model = s->model;
    rms_norm(normed, x, m, model->config.n_embd, model->output_norm, model->config.rms_eps);
    return projection_forward(cpu, &model->output, normed, m, &logits, err);
}

r2gen_status llama_prefill_traced(llama_session *s, const compute *cpu, const float *embeddings,
                                  int n, float *logits, float *all_logits, float *layer_outputs,
                                  float *final_norm, error *err)
{
    const llama_config *c = &s->model->config;
    size_t activations = (size_t)n * c->n_embd;
    if (n < 1 || n > s->max_positions)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                         "prefill of %d positions (session: 1..%d)", n, s->max_positions);
    kv_cache_start(&s->cache, 0); /* no valid prefix until this prefill completes */
    memcpy(s->x, embeddings, activations * sizeof(float));
    for (int j = 0; j < n; j++) s->positions[j] = j;
    for (int il = 0; il < c->n_layers; il++) {
        r2gen_status st = layer_forward(s, cpu, il, n, 0, err);
        if (st != R2GEN_OK) return st;
        if (layer_outputs)
            memcpy(layer_outputs + (size_t)il * activations, s->x, activations * sizeof(float));
    }

    const float *last = s->x + (size_t)(n - 1) * c->n_embd;
    r2gen_status st;
    if (all_logits || final_norm) {
        rms_norm(s->xb, s->x, n, c->n_embd, s->model->output_norm, c->rms_eps);
        if (final_norm) memcpy(final_norm, s->xb, activations * sizeof(float));
        st = all_logits ? projection_forward(cpu, &s->model->output, s->xb, n, &all_logits, err)
                        : output_logits(s, cpu, last, 1, s->xb, logits, err);
        if (st == R2GEN_OK && all_logits)
            memcpy(logits, all_logits + (size_t)(n - 1) * c->n_vocab, (size_t)c->n_vocab * sizeof(float));
    } else {
        st = output_logits(s, cpu, last, 1, s->xb, logits, err);
    }
    if (st != R2GEN_OK) return st;
    kv_cache_start(&s->cache, n);
    return R2GEN_OK;
}

r2gen_status llama_prefill(llama_session *s, const compute *cpu, const float *embeddings, int n,
                           float *logits, float *all_logits, error *err)
{
    return llama_prefill_traced(s, cpu, embeddings, n, logits, all_logits, NULL, NULL, err);
}

r2gen_status llama_decode(llama_session *s, const compute *cpu, const int32_t *tokens,
                          const int32_t *parent_rows, int n_rows, float *logits, error *err)
{
    const llama_config *c = &s->model->config;
    int n_ctx;
    r2gen_status st = kv_cache_begin_step(&s->cache, parent_rows, n_rows, &n_ctx, err);
    if (st == R2GEN_OK) st = llama_embed_tokens(s->model, tokens, (size_t)n_rows, s->x, err);
    if (st != R2GEN_OK) return st;
    for (int r = 0; r < n_rows; r++) s->positions[r] = n_ctx - 1;
    for (int il = 0; st == R2GEN_OK && il < c->n_layers; il++)
        st = layer_forward(s, cpu, il, n_rows, n_ctx, err);
    if (st == R2GEN_OK) st = output_logits(s, cpu, s->x, n_rows, s->xb, logits, err);
    if (st == R2GEN_OK) kv_cache_end_step(&s->cache);
    return st;
}
