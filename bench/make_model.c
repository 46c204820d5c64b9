/* make_model: write R2GenGPT-shaped benchmark models with random weights.
 *
 *   make_model llm   OUT.gguf q4_0|q8_0|q4_K|f16   a Llama-2-7B-shaped LLaMA in llama.cpp's layout
 *   make_model vision OUT.gguf f32|f16|bf16        Swin-base + projector (4096 wide)
 *
 * The weights are random but well-scaled (finite activations all the way through), the
 * vocabulary is synthetic but tokenises R2GenGPT's prompt to about as many tokens as Llama-2's
 * does, so prefill and decode shapes are the real ones. Deterministic: the same file every time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_write.h"

enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q8_0 = 8, T_Q4_K = 12, T_Q6_K = 14, T_BF16 = 30 };

typedef struct rng {
    uint64_t state;
} rng;

static uint64_t next(rng *r)
{
    r->state ^= r->state << 13;
    r->state ^= r->state >> 7;
    r->state ^= r->state << 17;
    return r->state;
}

/* Uniform in [-1, 1). */
static float uniform(rng *r) { return (float)((next(r) >> 40) * (1.0 / (1ull << 23)) - 1.0); }

static uint16_t to_f16(float f)
{
    /* small normal values only: exponent rebias and truncation are enough for random weights */
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7fffffff) < 0x38800000) return (uint16_t)((b >> 16) & 0x8000);
    return (uint16_t)(((b >> 16) & 0x8000) | ((((b >> 23) & 0xff) - 112) << 10) | ((b >> 13) & 0x3ff));
}

typedef struct fill_state {
    rng r;
    float scale; /* size of a weight of the tensor being written */
} fill_state;

static void put_f16(uint8_t *out, float v)
{
    uint16_t h = to_f16(v);
    memcpy(out, &h, 2);
}

/* Random bytes for quantised values, a scale field that keeps the weights near `scale`. */
static void fill_blocks(fill_state *s, uint32_t type, uint8_t *out, size_t n_bytes)
{
    size_t block = type == T_Q8_0 ? 34 : type == T_Q4_0 ? 18 : type == T_Q4_K ? 144 : 210;
    for (size_t at = 0; at < n_bytes; at += block) {
        uint8_t *b = out + at;
        for (size_t i = 0; i < block; i++) b[i] = (uint8_t)next(&s->r);
        switch (type) {
        case T_Q8_0: put_f16(b, s->scale / 64); break;
        case T_Q4_0: put_f16(b, s->scale / 4); break;
        case T_Q4_K:
            put_f16(b, s->scale / 256);
            put_f16(b + 2, s->scale / 128);
            break;
        default: put_f16(b + 208, s->scale / 2048); break; /* q6_K: d is last */
        }
    }
}

static void fill(void *user, const gguf_write_tensor *t, uint8_t *out, size_t n_bytes)
{
    fill_state *s = user;
    if (t->n_dims == 1) { /* norm weights and biases */
        for (size_t i = 0; i + 4 <= n_bytes; i += 4) {
            float v = strstr(t->name, "bias") ? 0.01f * uniform(&s->r) : 1.0f + 0.1f * uniform(&s->r);
            memcpy(out + i, &v, 4);
        }
        return;
    }
    /* weights of size ~1/sqrt(n_in) keep every product, and so the residual stream, at the size
     * of its input through all the layers */
    float scale = 0.5f / sqrtf((float)t->ne[0]);
    s->scale = scale;
    switch (t->type) {
    case T_F32:
        for (size_t i = 0; i + 4 <= n_bytes; i += 4) {
            float v = scale * uniform(&s->r);
            memcpy(out + i, &v, 4);
        }
        break;
    case T_F16:
    case T_BF16:
        for (size_t i = 0; i + 2 <= n_bytes; i += 2) {
            float v = scale * uniform(&s->r);
            if (t->type == T_F16) {
                put_f16(out + i, v);
            } else {
                uint32_t b;
                memcpy(&b, &v, 4);
                uint16_t h = (uint16_t)(b >> 16);
                memcpy(out + i, &h, 2);
            }
        }
        break;
    default: fill_blocks(s, t->type, out, n_bytes); break;
    }
}

static void add_matrix(gguf_writer *w, const char *name, uint32_t type, uint64_t n_in, uint64_t n_out)
{
    uint64_t ne[2] = {n_in, n_out};
    gguf_add_tensor(w, name, type, 2, ne);
}

static void add_vector(gguf_writer *w, const char *name, uint64_t n)
{
    gguf_add_tensor(w, name, T_F32, 1, &n);
}

/* ---- the LLaMA ---- */

#define N_VOCAB 32000
#define N_EMBD 4096
#define N_LAYERS 32
#define N_HEADS 32
#define N_FF 11008

static const char *const prompt_words[] = {
    "Human", "Img", "Generate", "a", "comprehensive", "and", "detailed", "diagnosis", "report",
    "for", "this", "chest", "xray", "image", "Assistant", "The", "heart", "is", "normal",
    "size", "lungs", "are", "clear", "There", "no", "pleural", "effusion", "or", "pneumothorax"};

/* Synthetic vocabulary: <unk> <s> </s>, the 256 byte tokens, printable ASCII characters, every
 * prefix of the prompt words (so BPE rebuilds whole words), then filler pieces. */
static int build_vocab(char **tokens, float *scores, int32_t *types)
{
    int n = 0;
    const char *specials[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++, n++) {
        tokens[n] = strdup(specials[i]);
        types[n] = i == 0 ? 2 : 3;
    }
    for (int b = 0; b < 256; b++, n++) {
        tokens[n] = malloc(8);
        snprintf(tokens[n], 8, "<0x%02X>", b);
        types[n] = 6;
    }
    for (int c = 33; c < 127; c++, n++) {
        tokens[n] = malloc(2);
        tokens[n][0] = (char)c, tokens[n][1] = 0;
        types[n] = 1;
    }
    tokens[n] = strdup("\xe2\x96\x81"), types[n++] = 1; /* the word-boundary piece alone */
    for (size_t w = 0; w < sizeof prompt_words / sizeof *prompt_words; w++) {
        size_t len = strlen(prompt_words[w]);
        for (size_t k = 1; k <= len; k++, n++) {
            tokens[n] = malloc(k + 4);
            memcpy(tokens[n], "\xe2\x96\x81", 3);
            memcpy(tokens[n] + 3, prompt_words[w], k);
            tokens[n][k + 3] = 0;
            types[n] = 1;
            for (int j = 0; j < n; j++)
                if (!strcmp(tokens[j], tokens[n])) { free(tokens[n]); n--; break; }
        }
    }
    for (int i = 0; n < N_VOCAB; i++, n++) {
        tokens[n] = malloc(16);
        snprintf(tokens[n], 16, "~%d", i);
        types[n] = 1;
    }
    for (int i = 0; i < N_VOCAB; i++) scores[i] = types[i] == 1 ? (float)strlen(tokens[i]) : 0.0f;
    return n;
}

static void put_llama_metadata(gguf_writer *w)
{
    gguf_put_string(w, "general.architecture", "llama");
    gguf_put_string(w, "general.name", "bench-llama-2-7b-random");
    gguf_put_u32(w, "llama.context_length", 4096);
    gguf_put_u32(w, "llama.embedding_length", N_EMBD);
    gguf_put_u32(w, "llama.block_count", N_LAYERS);
    gguf_put_u32(w, "llama.feed_forward_length", N_FF);
    gguf_put_u32(w, "llama.rope.dimension_count", N_EMBD / N_HEADS);
    gguf_put_u32(w, "llama.attention.head_count", N_HEADS);
    gguf_put_u32(w, "llama.attention.head_count_kv", N_HEADS);
    gguf_put_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_put_string(w, "tokenizer.ggml.model", "llama");
    char **tokens = calloc(N_VOCAB, sizeof *tokens);
    float *scores = calloc(N_VOCAB, sizeof *scores);
    int32_t *types = calloc(N_VOCAB, sizeof *types);
    build_vocab(tokens, scores, types);
    gguf_put_string_array(w, "tokenizer.ggml.tokens", (const char *const *)tokens, N_VOCAB);
    gguf_put_f32_array(w, "tokenizer.ggml.scores", scores, N_VOCAB);
    gguf_put_i32_array(w, "tokenizer.ggml.token_type", types, N_VOCAB);
    for (int i = 0; i < N_VOCAB; i++) free(tokens[i]);
    free(tokens), free(scores), free(types);
    gguf_put_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_put_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_put_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_put_u32(w, "tokenizer.ggml.padding_token_id", 0);
}

/* llama.cpp's Q4_K_M gives attn_v and ffn_down q6_K in the layers its use_more_bits picks: the
 * first and last eighth, and every third layer in between (16 of 32). */
static int more_bits(int layer)
{
    return layer < N_LAYERS / 8 || layer >= 7 * N_LAYERS / 8 || (layer - N_LAYERS / 8) % 3 == 2;
}

static void add_llama_tensors(gguf_writer *w, uint32_t type)
{
    /* llama.cpp's quantizer writes the output matrix in q6_K for every type but q8_0 (which keeps
     * q8_0); an f16 file is not quantized at all */
    uint32_t output_type = type == T_Q4_K || type == T_Q4_0 ? T_Q6_K : type;
    add_matrix(w, "token_embd.weight", type, N_EMBD, N_VOCAB);
    char name[64];
    for (int l = 0; l < N_LAYERS; l++) {
#define LAYER(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, l), name)
        uint32_t more = type == T_Q4_K && more_bits(l) ? T_Q6_K : type;
        add_vector(w, LAYER("attn_norm.weight"), N_EMBD);
        add_matrix(w, LAYER("attn_q.weight"), type, N_EMBD, N_EMBD);
        add_matrix(w, LAYER("attn_k.weight"), type, N_EMBD, N_EMBD);
        add_matrix(w, LAYER("attn_v.weight"), more, N_EMBD, N_EMBD);
        add_matrix(w, LAYER("attn_output.weight"), type, N_EMBD, N_EMBD);
        add_vector(w, LAYER("ffn_norm.weight"), N_EMBD);
        add_matrix(w, LAYER("ffn_gate.weight"), type, N_EMBD, N_FF);
        add_matrix(w, LAYER("ffn_up.weight"), type, N_EMBD, N_FF);
        add_matrix(w, LAYER("ffn_down.weight"), more, N_FF, N_EMBD);
#undef LAYER
    }
    add_vector(w, "output_norm.weight", N_EMBD);
    add_matrix(w, "output.weight", output_type, N_EMBD, N_VOCAB);
}

/* ---- Swin-base + projector ---- */

static void put_vision_metadata(gguf_writer *w)
{
    const uint32_t depths[] = {2, 2, 18, 2}, heads[] = {4, 8, 16, 32};
    const float mean[] = {0.485f, 0.456f, 0.406f}, std[] = {0.229f, 0.224f, 0.225f};
    gguf_put_string(w, "general.architecture", "r2gen");
    gguf_put_u32(w, "r2gen.vision.image_size", 224);
    gguf_put_u32(w, "r2gen.vision.patch_size", 4);
    gguf_put_u32(w, "r2gen.vision.num_channels", 3);
    gguf_put_u32(w, "r2gen.vision.embed_dim", 128);
    gguf_put_u32_array(w, "r2gen.vision.depths", depths, 4);
    gguf_put_u32_array(w, "r2gen.vision.num_heads", heads, 4);
    gguf_put_u32(w, "r2gen.vision.window_size", 7);
    gguf_put_f32(w, "r2gen.vision.mlp_ratio", 4.0f);
    gguf_put_f32(w, "r2gen.vision.layer_norm_eps", 1e-5f);
    gguf_put_u32(w, "r2gen.vision.num_features", 1024);
    gguf_put_f32_array(w, "r2gen.vision.image_mean", mean, 3);
    gguf_put_f32_array(w, "r2gen.vision.image_std", std, 3);
    gguf_put_u32(w, "r2gen.proj.n_embd", N_EMBD);
    gguf_put_f32(w, "r2gen.proj.layer_norm_eps", 1e-5f);
    gguf_put_string(w, "r2gen.checkpoint.flavour", "shallow");
    gguf_put_string(w, "r2gen.llm.name", "Llama-2-7b-chat");
}

static void add_norm(gguf_writer *w, const char *prefix, uint64_t n)
{
    char name[192];
    snprintf(name, sizeof name, "%s.weight", prefix);
    add_vector(w, name, n);
    snprintf(name, sizeof name, "%s.bias", prefix);
    add_vector(w, name, n);
}

static void add_linear(gguf_writer *w, const char *prefix, uint32_t type, uint64_t n_in,
                       uint64_t n_out, int bias)
{
    char name[192];
    snprintf(name, sizeof name, "%s.weight", prefix);
    add_matrix(w, name, type, n_in, n_out);
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        add_vector(w, name, n_out);
    }
}

static void add_swin_block(gguf_writer *w, int stage, int block, uint64_t dim, uint64_t heads,
                           uint32_t type)
{
    char prefix[96], name[128];
    snprintf(prefix, sizeof prefix, "r2gen.vision.layers.%d.blocks.%d", stage, block);
    const char *parts[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
    snprintf(name, sizeof name, "%s.norm1", prefix);
    add_norm(w, name, dim);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, parts[i]);
        add_linear(w, name, type, dim, dim, 1);
    }
    uint64_t table[2] = {heads, 169};
    snprintf(name, sizeof name, "%s.rel_pos_bias", prefix);
    gguf_add_tensor(w, name, T_F32, 2, table);
    snprintf(name, sizeof name, "%s.norm2", prefix);
    add_norm(w, name, dim);
    snprintf(name, sizeof name, "%s.ffn_up", prefix);
    add_linear(w, name, type, dim, 4 * dim, 1);
    snprintf(name, sizeof name, "%s.ffn_down", prefix);
    add_linear(w, name, type, 4 * dim, dim, 1);
}

static void add_vision_tensors(gguf_writer *w, uint32_t type)
{
    const int depths[] = {2, 2, 18, 2}, heads[] = {4, 8, 16, 32};
    add_linear(w, "r2gen.vision.patch_embed", type, 48, 128, 1);
    add_norm(w, "r2gen.vision.patch_norm", 128);
    uint64_t dim = 128;
    for (int s = 0; s < 4; s++, dim *= 2) {
        for (int b = 0; b < depths[s]; b++) add_swin_block(w, s, b, dim, (uint64_t)heads[s], type);
        if (s == 3) break;
        char name[96];
        snprintf(name, sizeof name, "r2gen.vision.layers.%d.merge.norm", s);
        add_norm(w, name, 4 * dim);
        snprintf(name, sizeof name, "r2gen.vision.layers.%d.merge.reduction", s);
        add_linear(w, name, type, 4 * dim, 2 * dim, 0);
    }
    add_norm(w, "r2gen.vision.norm", 1024);
    add_linear(w, "r2gen.proj", type, 1024, N_EMBD, 1);
    add_norm(w, "r2gen.proj.norm", N_EMBD);
}

static int parse_type(const char *name, uint32_t *type)
{
    static const struct { const char *name; uint32_t type; } types[] = {
        {"f32", T_F32}, {"f16", T_F16}, {"bf16", T_BF16}, {"q8_0", T_Q8_0},
        {"q4_0", T_Q4_0}, {"q4_K", T_Q4_K}};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (!strcmp(name, types[i].name)) {
            *type = types[i].type;
            return 1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t type;
    if (argc != 4 || !parse_type(argv[3], &type) ||
        (strcmp(argv[1], "llm") && strcmp(argv[1], "vision"))) {
        fprintf(stderr, "usage: make_model llm|vision OUT.gguf q4_0|q8_0|q4_K|f16|bf16|f32\n");
        return 2;
    }
    static gguf_writer w;
    gguf_writer_init(&w);
    fill_state state = {{0x9E3779B97F4A7C15ull}, 0.0f};
    if (!strcmp(argv[1], "llm")) {
        put_llama_metadata(&w);
        add_llama_tensors(&w, type);
    } else {
        put_vision_metadata(&w);
        add_vision_tensors(&w, type);
    }
    if (gguf_write_file(&w, argv[2], fill, &state) != 0) {
        fprintf(stderr, "make_model: cannot write %s\n", argv[2]);
        return 1;
    }
    return 0;
}
