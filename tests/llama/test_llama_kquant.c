/* A random model with K-quant weights (q4_K matrices, q6_K output and ffn_down, the mix of
 * llama.cpp's Q4_K_M) and grouped-query attention (4 query heads on 2 key/value heads), written as
 * a GGUF in memory twice: once quantised, once with the same weights dequantised to f32. The
 * converter writes neither K-quants nor GQA, so this is where the decoder meets them:
 * - embeddings of a q4_K token table are its exact dequantised rows;
 * - the K-quant model's prefill logits follow the f32 copy's within the quantisation of the
 *   activations that the K-quant products multiply (measured 1.4% of the logit range on every
 *   kernel path; the packed kernels run q, k, v and ffn_down here);
 * - with GQA, decode steps equal a full prefill: to float rounding with f32 weights; with
 *   K-quants both quantise every activation row alike (measured equal on every kernel path). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gguf_builder.h"
#include "kernels/quant.h"
#include "random_blocks.h"
#include "tiny_model.h"

enum { N_EMBD = 256, N_HEADS = 4, N_KV_HEADS = 2, HEAD_DIM = 64, N_FF = 512, N_VOCAB = 300,
       N_LAYERS = 2, N_PREFIX = 12, N_STEPS = 3, MAX_WEIGHTS = 3 + 9 * N_LAYERS };

typedef struct weight {
    char name[48];
    tensor_type type;
    int n_dims;
    int64_t ne[2];
    void *data;
    size_t n_bytes;
} weight;

typedef struct weights {
    weight w[MAX_WEIGHTS];
    int n;
} weights;

static void add_weight(weights *ws, test_rng *rng, const char *name, tensor_type type, int64_t n_in,
                       int64_t n_out)
{
    weight *w = &ws->w[ws->n++];
    snprintf(w->name, sizeof w->name, "%s", name);
    w->type = type;
    w->n_dims = n_out > 1 ? 2 : 1;
    w->ne[0] = n_in;
    w->ne[1] = n_out;
    w->n_bytes = tensor_row_bytes(type, n_in) * (size_t)n_out;
    w->data = malloc(w->n_bytes);
    if (type == TENSOR_F32) { /* norm weights around 1 */
        for (int64_t i = 0; i < n_in * n_out; i++) ((float *)w->data)[i] = rng_uniform(rng, 0.8f, 1.2f);
    } else {
        /* block scales small enough that a row's dot product with a unit-RMS input stays O(1) */
        random_rows(rng, type, w->data, n_out, n_in, 2e-4f, 6e-4f);
    }
}

static void make_weights(weights *ws, test_rng *rng)
{
    char name[48];
    ws->n = 0;
    add_weight(ws, rng, "token_embd.weight", TENSOR_Q4_K, N_EMBD, N_VOCAB);
    add_weight(ws, rng, "output.weight", TENSOR_Q6_K, N_EMBD, N_VOCAB);
    add_weight(ws, rng, "output_norm.weight", TENSOR_F32, N_EMBD, 1);
    for (int l = 0; l < N_LAYERS; l++) {
        const struct { const char *suffix; tensor_type type; int64_t n_in, n_out; } parts[] = {
            {"attn_norm", TENSOR_F32, N_EMBD, 1},
            {"attn_q", TENSOR_Q4_K, N_EMBD, N_HEADS * HEAD_DIM},
            {"attn_k", TENSOR_Q4_K, N_EMBD, N_KV_HEADS * HEAD_DIM},
            {"attn_v", TENSOR_Q6_K, N_EMBD, N_KV_HEADS * HEAD_DIM},
            {"attn_output", TENSOR_Q4_K, N_HEADS * HEAD_DIM, N_EMBD},
            {"ffn_norm", TENSOR_F32, N_EMBD, 1},
            {"ffn_gate", TENSOR_Q4_K, N_EMBD, N_FF},
            {"ffn_up", TENSOR_Q4_K, N_EMBD, N_FF},
            {"ffn_down", TENSOR_Q6_K, N_FF, N_EMBD},
        };
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, parts[i].suffix);
            add_weight(ws, rng, name, parts[i].type, parts[i].n_in, parts[i].n_out);
        }
    }
}

/* The same weights as f32 (scalar reference dequantisation). */
static void dequantised_copy(const weights *in, weights *out)
{
    *out = *in;
    for (int i = 0; i < in->n; i++) {
        const weight *w = &in->w[i];
        weight *f = &out->w[i];
        int64_t n_rows = w->ne[1] > 0 ? w->ne[1] : 1;
        f->type = TENSOR_F32;
        f->n_bytes = (size_t)(w->ne[0] * n_rows) * sizeof(float);
        f->data = malloc(f->n_bytes);
        const type_kernels *tk = kernels_for_type(&kernels_scalar, w->type);
        for (int64_t r = 0; r < n_rows; r++) {
            float *dst = (float *)f->data + r * w->ne[0];
            const char *src = (const char *)w->data + r * tensor_row_bytes(w->type, w->ne[0]);
            if (tk)
                tk->to_float(src, dst, w->ne[0]);
            else
                memcpy(dst, src, (size_t)w->ne[0] * sizeof(float));
        }
    }
}

static void free_weights(weights *ws)
{
    for (int i = 0; i < ws->n; i++) free(ws->w[i].data);
}

static void put_u32_kv(byte_buffer *b, const char *key, uint32_t v)
{
    buffer_string(b, key);
    buffer_u32(b, GGUF_U32);
    buffer_u32(b, v);
}

static void pad_to(byte_buffer *b, size_t alignment)
{
    size_t pad = (alignment - b->size % alignment) % alignment;
    buffer_put(b, NULL, pad);
}

/* A GGUF v3 file with the llama.* keys and the weights, data aligned to 32 bytes. */
static void write_gguf(byte_buffer *b, const weights *ws)
{
    const float eps = 1e-5f;
    memset(b, 0, sizeof *b);
    buffer_put(b, "GGUF", 4);
    buffer_u32(b, 3);
    buffer_u64(b, (uint64_t)ws->n);
    buffer_u64(b, 9);
    buffer_string(b, "general.architecture");
    buffer_u32(b, GGUF_STRING);
    buffer_string(b, "llama");
    put_u32_kv(b, "llama.context_length", 64);
    put_u32_kv(b, "llama.embedding_length", N_EMBD);
    put_u32_kv(b, "llama.block_count", N_LAYERS);
    put_u32_kv(b, "llama.feed_forward_length", N_FF);
    put_u32_kv(b, "llama.rope.dimension_count", HEAD_DIM);
    put_u32_kv(b, "llama.attention.head_count", N_HEADS);
    put_u32_kv(b, "llama.attention.head_count_kv", N_KV_HEADS);
    buffer_string(b, "llama.attention.layer_norm_rms_epsilon");
    buffer_u32(b, GGUF_F32);
    buffer_put(b, &eps, sizeof eps);
    uint64_t offset = 0;
    for (int i = 0; i < ws->n; i++) {
        const weight *w = &ws->w[i];
        buffer_string(b, w->name);
        buffer_u32(b, (uint32_t)w->n_dims);
        for (int d = 0; d < w->n_dims; d++) buffer_u64(b, (uint64_t)w->ne[d]);
        buffer_u32(b, (uint32_t)w->type);
        buffer_u64(b, offset);
        offset += (w->n_bytes + 31) / 32 * 32;
    }
    pad_to(b, 32);
    for (int i = 0; i < ws->n; i++) {
        buffer_put(b, ws->w[i].data, ws->w[i].n_bytes);
        pad_to(b, 32);
    }
}

typedef struct loaded {
    byte_buffer bytes;
    gguf_file *file;
    llama_model *model;
} loaded;

static int load(const weights *ws, loaded *out)
{
    error err = {0};
    write_gguf(&out->bytes, ws);
    out->file = NULL;
    out->model = NULL;
    r2gen_status st = gguf_open_memory(out->bytes.data, out->bytes.size, &out->file, &err);
    if (st == R2GEN_OK) st = llama_load(out->file, 1, &out->model, &err);
    CHECK(st == R2GEN_OK, "loading the random model: %s", err.message);
    return st == R2GEN_OK ? 0 : -1;
}

static void unload(loaded *l)
{
    llama_free(l->model);
    if (l->file) gguf_close(l->file);
    buffer_free(&l->bytes);
}

static double largest(const float *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* Prefill of `inputs` then N_STEPS greedy steps; logits[N_STEPS + 1][N_VOCAB], tokens[N_STEPS]. */
static r2gen_status greedy(const llama_model *m, const float *inputs, float *logits, int32_t *tokens,
                           error *err)
{
    compute cpu = tiny_cpu();
    llama_session *s = NULL;
    r2gen_status st = llama_session_create(m, 1, N_PREFIX + N_STEPS, KV_F32, &s, err);
    if (st == R2GEN_OK) st = llama_prefill(s, &cpu, inputs, N_PREFIX, logits, NULL, err);
    for (int i = 0; st == R2GEN_OK && i < N_STEPS; i++) {
        tokens[i] = argmax(logits + (size_t)i * N_VOCAB, N_VOCAB);
        st = llama_decode(s, &cpu, &tokens[i], NULL, 1, logits + (size_t)(i + 1) * N_VOCAB, err);
    }
    llama_session_free(s);
    return st;
}

/* GQA decode steps against one prefill of prefix + the decoded tokens, within `tol` of the
 * logits' range (with K-quants, room for the float-rounding differences between decode and
 * prefill attention to move an activation across a quantisation step). */
static void check_decode(const char *what, const llama_model *m, const float *inputs, double tol)
{
    compute cpu = tiny_cpu();
    error err = {0};
    int n_total = N_PREFIX + N_STEPS;
    float *steps = malloc(sizeof(float) * (N_STEPS + 1) * N_VOCAB);
    float *all = malloc(sizeof(float) * n_total * N_VOCAB), last[N_VOCAB];
    float *sequence = malloc(sizeof(float) * n_total * N_EMBD);
    int32_t tokens[N_STEPS];
    llama_session *s = NULL;
    memcpy(sequence, inputs, sizeof(float) * N_PREFIX * N_EMBD);
    r2gen_status st = greedy(m, inputs, steps, tokens, &err);
    if (st == R2GEN_OK) st = llama_embed_tokens(m, tokens, N_STEPS, sequence + N_PREFIX * N_EMBD, &err);
    if (st == R2GEN_OK) st = llama_session_create(m, 1, n_total, KV_F32, &s, &err);
    if (st == R2GEN_OK) st = llama_prefill(s, &cpu, sequence, n_total, last, all, &err);
    CHECK(st == R2GEN_OK, "GQA decoding: %s", err.message);
    if (st == R2GEN_OK) {
        size_t n = (size_t)(N_STEPS + 1) * N_VOCAB;
        double d = max_abs_diff(steps, all + (size_t)(N_PREFIX - 1) * N_VOCAB, n) / largest(steps, n);
        printf("%s: GQA decode steps vs full prefill: max |diff| / max |logit| = %.3g\n", what, d);
        CHECK(d <= tol, "%s: GQA decode steps differ from the full prefill by %g (relative)", what, d);
    }
    llama_session_free(s);
    free(steps);
    free(all);
    free(sequence);
}

int main(void)
{
    test_rng rng = {0x5eed1234abcdull};
    weights quantised, dequantised;
    loaded q = {0}, f = {0};
    make_weights(&quantised, &rng);
    dequantised_copy(&quantised, &dequantised);
    if (load(&quantised, &q) != 0 || load(&dequantised, &f) != 0) return check_summary();

    error err = {0};
    float *row_q = malloc(sizeof(float) * N_EMBD), *row_f = malloc(sizeof(float) * N_EMBD);
    int32_t token = 7;
    CHECK(llama_embed_tokens(q.model, &token, 1, row_q, &err) == R2GEN_OK &&
              llama_embed_tokens(f.model, &token, 1, row_f, &err) == R2GEN_OK,
          "%s", err.message);
    CHECK(max_abs_diff(row_q, row_f, N_EMBD) == 0.0, "q4_K embedding row differs from its dequantisation");

    float *inputs = malloc(sizeof(float) * N_PREFIX * N_EMBD);
    for (int i = 0; i < N_PREFIX * N_EMBD; i++) inputs[i] = rng_uniform(&rng, -1.0f, 1.0f);
    compute cpu = tiny_cpu();
    float *logits_q = malloc(sizeof(float) * N_PREFIX * N_VOCAB);
    float *logits_f = malloc(sizeof(float) * N_PREFIX * N_VOCAB), last[N_VOCAB];
    llama_session *sq = NULL, *sf = NULL;
    r2gen_status st = llama_session_create(q.model, 1, N_PREFIX, KV_F32, &sq, &err);
    if (st == R2GEN_OK) st = llama_session_create(f.model, 1, N_PREFIX, KV_F32, &sf, &err);
    if (st == R2GEN_OK) st = llama_prefill(sq, &cpu, inputs, N_PREFIX, last, logits_q, &err);
    if (st == R2GEN_OK) st = llama_prefill(sf, &cpu, inputs, N_PREFIX, last, logits_f, &err);
    CHECK(st == R2GEN_OK, "prefill: %s", err.message);
    if (st == R2GEN_OK) {
        size_t n = (size_t)N_PREFIX * N_VOCAB;
        double scale = largest(logits_f, n), d = max_abs_diff(logits_q, logits_f, n) / scale;
        printf("q4_K/q6_K vs dequantised f32 weights: max |diff| / max |logit| = %.3g (max |logit| %.3g)\n",
               d, scale);
        CHECK(scale > 1.0 && d <= 0.03, "K-quant logits differ by %g of their range", d);
    }
    check_decode("f32 copy", f.model, inputs, 1e-5);
    check_decode("q4_K/q6_K", q.model, inputs, 0.005);

    llama_session_free(sq);
    llama_session_free(sf);
    free(inputs);
    free(logits_q);
    free(logits_f);
    free(row_q);
    free(row_f);
    unload(&q);
    unload(&f);
    free_weights(&quantised);
    free_weights(&dequantised);
    return check_summary();
}
