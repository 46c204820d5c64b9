/* Swin encoder speed at R2GenGPT's size: Swin-base (embed 128, depths 2/2/18/2, heads
 * 4/8/16/32, window 7, 224x224 input), one view. The weights are random; they are written into
 * a GGUF image in memory and loaded through gguf_open_memory + swin_load, the library's own path.
 *
 * Usage: bench_swin [runs [f32|bf16 [threads]]]
 * Prints the encode time in ms (best of `runs`, default 3) for 1 and 2 threads with f32 and bf16
 * linear weights, or only for the weight type and thread count given. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "vision/swin.h"

#define EMBED 128
#define N_STAGES 4
#define WINDOW 7
#define PATCH 4
#define IMAGE 224
#define ALIGNMENT 32

static const uint32_t depths[N_STAGES] = {2, 2, 18, 2};
static const uint32_t heads[N_STAGES] = {4, 8, 16, 32};

/* ---------------------------------------------------------------------------------------------
 * A growable byte buffer and the GGUF pieces written into it */

typedef struct bytes {
    uint8_t *data;
    size_t size, capacity;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (b->size + n > b->capacity) {
        b->capacity = (b->size + n) * 2;
        b->data = realloc(b->data, b->capacity);
        if (!b->data) {
            fprintf(stderr, "bench_swin: out of memory\n");
            exit(1);
        }
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

static void put_u32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(bytes *b, uint64_t v) { put(b, &v, 8); }

static void put_string(bytes *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void pad_to(bytes *b, size_t alignment)
{
    static const uint8_t zeros[ALIGNMENT];
    put(b, zeros, (alignment - b->size % alignment) % alignment);
}

static void kv_u32(bytes *b, const char *key, uint32_t v)
{
    put_string(b, key);
    put_u32(b, GGUF_U32);
    put_u32(b, v);
}

static void kv_f32(bytes *b, const char *key, float v)
{
    put_string(b, key);
    put_u32(b, GGUF_F32);
    put(b, &v, 4);
}

static void kv_array(bytes *b, const char *key, gguf_value_type elem_type, const void *values,
                     uint64_t count)
{
    put_string(b, key);
    put_u32(b, GGUF_ARRAY);
    put_u32(b, elem_type);
    put_u64(b, count);
    put(b, values, count * 4);
}

/* ---------------------------------------------------------------------------------------------
 * The tensors of the model: name, shape and how to fill them */

typedef enum fill { FILL_MATRIX, FILL_ONES, FILL_SMALL } fill;

typedef struct tensor_spec {
    char name[192];
    int n_dims;
    int64_t ne[2];
    fill fill;
} tensor_spec;

typedef struct spec_list {
    tensor_spec *items;
    int count, capacity;
} spec_list;

static void add_spec(spec_list *l, const char *name, int n_dims, int64_t ne0, int64_t ne1,
                     fill f)
{
    if (l->count == l->capacity) {
        l->capacity = l->capacity ? 2 * l->capacity : 256;
        l->items = realloc(l->items, (size_t)l->capacity * sizeof *l->items);
        if (!l->items) exit(1);
    }
    tensor_spec *s = &l->items[l->count++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->n_dims = n_dims;
    s->ne[0] = ne0;
    s->ne[1] = ne1;
    s->fill = f;
}

static void add_linear(spec_list *l, const char *prefix, const char *what, int64_t n_in,
                       int64_t n_out, int with_bias)
{
    char name[192];
    snprintf(name, sizeof name, "%s%s.weight", prefix, what);
    add_spec(l, name, 2, n_in, n_out, FILL_MATRIX);
    if (!with_bias) return;
    snprintf(name, sizeof name, "%s%s.bias", prefix, what);
    add_spec(l, name, 1, n_out, 1, FILL_SMALL);
}

static void add_norm(spec_list *l, const char *prefix, const char *what, int64_t n)
{
    char name[192];
    snprintf(name, sizeof name, "%s%s.weight", prefix, what);
    add_spec(l, name, 1, n, 1, FILL_ONES);
    snprintf(name, sizeof name, "%s%s.bias", prefix, what);
    add_spec(l, name, 1, n, 1, FILL_SMALL);
}

static void swin_base_specs(spec_list *l)
{
    char prefix[96];
    add_linear(l, "r2gen.vision.", "patch_embed", 3 * PATCH * PATCH, EMBED, 1);
    add_norm(l, "r2gen.vision.", "patch_norm", EMBED);
    int64_t dim = EMBED;
    for (int s = 0; s < N_STAGES; s++) {
        for (uint32_t b = 0; b < depths[s]; b++) {
            snprintf(prefix, sizeof prefix, "r2gen.vision.layers.%d.blocks.%u.", s, b);
            add_norm(l, prefix, "norm1", dim);
            add_linear(l, prefix, "attn_q", dim, dim, 1);
            add_linear(l, prefix, "attn_k", dim, dim, 1);
            add_linear(l, prefix, "attn_v", dim, dim, 1);
            add_linear(l, prefix, "attn_out", dim, dim, 1);
            char name[192];
            snprintf(name, sizeof name, "%srel_pos_bias", prefix);
            add_spec(l, name, 2, heads[s], (2 * WINDOW - 1) * (2 * WINDOW - 1), FILL_SMALL);
            add_norm(l, prefix, "norm2", dim);
            add_linear(l, prefix, "ffn_up", dim, 4 * dim, 1);
            add_linear(l, prefix, "ffn_down", 4 * dim, dim, 1);
        }
        if (s + 1 < N_STAGES) {
            snprintf(prefix, sizeof prefix, "r2gen.vision.layers.%d.merge.", s);
            add_norm(l, prefix, "norm", 4 * dim);
            add_linear(l, prefix, "reduction", 4 * dim, 2 * dim, 0);
            dim *= 2;
        }
    }
    add_norm(l, "r2gen.vision.", "norm", dim);
}

/* xorshift: reproducible uniform values in [-1, 1). */
static float next_uniform(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (float)((*state >> 40) * (1.0 / (1 << 23)) - 1.0);
}

static float spec_value(const tensor_spec *s, uint64_t *rng)
{
    switch (s->fill) {
    case FILL_MATRIX: return next_uniform(rng) / sqrtf((float)s->ne[0]);
    case FILL_ONES: return 1.0f + 0.1f * next_uniform(rng);
    case FILL_SMALL: return 0.02f * next_uniform(rng);
    }
    return 0.0f;
}

/* Matrices in `matrix_type` (f32 or bf16), everything else f32, as the converter writes. */
static tensor_type spec_type(const tensor_spec *s, tensor_type matrix_type)
{
    return s->fill == FILL_MATRIX ? matrix_type : TENSOR_F32;
}

static size_t spec_bytes(const tensor_spec *s, tensor_type matrix_type)
{
    return (size_t)(s->ne[0] * s->ne[1]) * (spec_type(s, matrix_type) == TENSOR_F32 ? 4 : 2);
}

static bytes build_gguf(const spec_list *l, tensor_type matrix_type)
{
    bytes b = {0};
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, (uint64_t)l->count);
    put_u64(&b, 13);
    put_string(&b, "general.architecture");
    put_u32(&b, GGUF_STRING);
    put_string(&b, "r2gen");
    kv_u32(&b, "r2gen.vision.image_size", IMAGE);
    kv_u32(&b, "r2gen.vision.patch_size", PATCH);
    kv_u32(&b, "r2gen.vision.num_channels", 3);
    kv_u32(&b, "r2gen.vision.embed_dim", EMBED);
    kv_array(&b, "r2gen.vision.depths", GGUF_U32, depths, N_STAGES);
    kv_array(&b, "r2gen.vision.num_heads", GGUF_U32, heads, N_STAGES);
    kv_u32(&b, "r2gen.vision.window_size", WINDOW);
    kv_f32(&b, "r2gen.vision.mlp_ratio", 4.0f);
    kv_f32(&b, "r2gen.vision.layer_norm_eps", 1e-5f);
    kv_u32(&b, "r2gen.vision.num_features", EMBED << (N_STAGES - 1));
    kv_array(&b, "r2gen.vision.image_mean", GGUF_F32, mean, 3);
    kv_array(&b, "r2gen.vision.image_std", GGUF_F32, std, 3);

    uint64_t offset = 0;
    for (int i = 0; i < l->count; i++) {
        const tensor_spec *s = &l->items[i];
        put_string(&b, s->name);
        put_u32(&b, (uint32_t)s->n_dims);
        for (int d = 0; d < s->n_dims; d++) put_u64(&b, (uint64_t)s->ne[d]);
        put_u32(&b, spec_type(s, matrix_type));
        put_u64(&b, offset);
        offset += (spec_bytes(s, matrix_type) + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }
    pad_to(&b, ALIGNMENT);

    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < l->count; i++) {
        const tensor_spec *s = &l->items[i];
        int64_t n = s->ne[0] * s->ne[1];
        for (int64_t j = 0; j < n; j++) {
            float v = spec_value(s, &rng);
            if (spec_type(s, matrix_type) == TENSOR_F32) {
                put(&b, &v, 4);
            } else {
                uint16_t h = f32_to_bf16(v);
                put(&b, &h, 2);
            }
        }
        pad_to(&b, ALIGNMENT);
    }
    return b;
}

/* ---------------------------------------------------------------------------------------------
 * Timing */

static double best_encode_ms(const swin_model *m, int n_threads, int runs, const float *pixels,
                             float *features)
{
    compute cpu = {n_threads, GEMM_ONEDNN, 1};
    double best = INFINITY;
    error err = {0};
    for (int r = 0; r < runs; r++) {
        double t0 = omp_get_wtime();
        if (swin_encode(m, &cpu, pixels, features, NULL, &err) != R2GEN_OK) {
            fprintf(stderr, "bench_swin: %s\n", err.message);
            exit(1);
        }
        double ms = (omp_get_wtime() - t0) * 1e3;
        if (ms < best) best = ms;
    }
    return best;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    if (runs < 1) runs = 1;
    const char *only_type = argc > 2 ? argv[2] : NULL;
    int only_threads = argc > 3 ? atoi(argv[3]) : 0;
    spec_list specs = {0};
    swin_base_specs(&specs);

    float *pixels = malloc((size_t)3 * IMAGE * IMAGE * sizeof *pixels);
    float *features = malloc((size_t)49 * (EMBED << (N_STAGES - 1)) * sizeof *features);
    uint64_t rng = 12345;
    for (int i = 0; i < 3 * IMAGE * IMAGE; i++) pixels[i] = 2.0f * next_uniform(&rng);

    printf("Swin-base 224x224, 1 view, best of %d runs\n", runs);
    const tensor_type types[] = {TENSOR_F32, TENSOR_BF16};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        if (only_type && strcmp(only_type, tensor_type_name(types[t])) != 0) continue;
        bytes file = build_gguf(&specs, types[t]);
        gguf_file *f = NULL;
        swin_model m;
        error err = {0};
        if (gguf_open_memory(file.data, file.size, &f, &err) != R2GEN_OK ||
            swin_load(f, &m, &err) != R2GEN_OK) {
            fprintf(stderr, "bench_swin: %s\n", err.message);
            return 1;
        }
        best_encode_ms(&m, 2, 1, pixels, features); /* warm-up: page faults, oneDNN kernels */
        for (int n_threads = 1; n_threads <= 2; n_threads++) {
            if (only_threads && n_threads != only_threads) continue;
            printf("  %-4s weights, %d thread%s: %8.1f ms\n", tensor_type_name(types[t]),
                   n_threads, n_threads > 1 ? "s" : " ",
                   best_encode_ms(&m, n_threads, runs, pixels, features));
        }
        swin_free(&m);
        gguf_close(f);
        free(file.data);
    }
    free(features);
    free(pixels);
    free(specs.items);
    return 0;
}
