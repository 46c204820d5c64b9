#include "gguf_builder.h"

#include <stdlib.h>
#include <string.h>

void buffer_put(byte_buffer *b, const void *data, size_t n)
{
    if (b->size + n > b->capacity) {
        size_t capacity = b->capacity ? b->capacity * 2 : 256;
        while (capacity < b->size + n) capacity *= 2;
        b->data = realloc(b->data, capacity);
        if (!b->data) abort(); /* test code: out of memory ends the test */
        b->capacity = capacity;
    }
    if (data)
        memcpy(b->data + b->size, data, n);
    else
        memset(b->data + b->size, 0, n);
    b->size += n;
}

void buffer_u32(byte_buffer *b, uint32_t v) { buffer_put(b, &v, sizeof v); }
void buffer_u64(byte_buffer *b, uint64_t v) { buffer_put(b, &v, sizeof v); }

void buffer_string(byte_buffer *b, const char *s)
{
    buffer_u64(b, strlen(s));
    buffer_put(b, s, strlen(s));
}

void buffer_free(byte_buffer *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

typedef struct sample_tensor {
    const char *name;
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[2];
    size_t n_bytes;
} sample_tensor;

static const sample_tensor sample_tensors[] = {
    {"weights.f32", 0, 2, {4, 3}, 48},   {"weights.f16", 1, 1, {8, 1}, 16},
    {"weights.q8_0", 8, 2, {32, 2}, 68}, {"weights.q4_0", 2, 1, {32, 1}, 18},
    {"weights.q4_K", 12, 1, {256, 1}, 144}, {"weights.q6_K", 14, 1, {256, 1}, 210},
    {"weights.bf16", 30, 2, {2, 2}, 8},
};
#define N_SAMPLE_TENSORS (sizeof sample_tensors / sizeof sample_tensors[0])

static void put_key(byte_buffer *b, const char *key, uint32_t type)
{
    buffer_string(b, key);
    buffer_u32(b, type);
}

static void put_metadata(byte_buffer *b, sample_layout *layout)
{
    layout->first_key_len = b->size;
    put_key(b, "general.alignment", 4);
    buffer_u32(b, 32);
    put_key(b, "general.architecture", 8);
    buffer_string(b, "llama");
    put_key(b, "sample.u8", 0);
    buffer_put(b, "\xfe", 1);
    put_key(b, "sample.i8", 1);
    buffer_put(b, "\xfe", 1);
    put_key(b, "sample.u16", 2);
    buffer_put(b, "\x34\x12", 2);
    put_key(b, "sample.i16", 3);
    buffer_put(b, "\xfe\xff", 2);
    put_key(b, "sample.i32", 5);
    buffer_u32(b, (uint32_t)-7);
    float f = 0.25f;
    put_key(b, "sample.f32", 6);
    buffer_put(b, &f, 4);
    put_key(b, "sample.bool", 7);
    buffer_put(b, "\x01", 1);
    put_key(b, "sample.u64", 10);
    buffer_u64(b, 1ull << 40);
    put_key(b, "sample.i64", 11);
    buffer_u64(b, (uint64_t)-5);
    double d = -1.5;
    put_key(b, "sample.f64", 12);
    buffer_put(b, &d, 8);
    put_key(b, "sample.text", 8);
    layout->string_value_len = b->size;
    buffer_string(b, "Human: <Img>");
    put_key(b, "sample.list", 9);
    buffer_u32(b, 4);
    layout->array_count = b->size;
    buffer_u64(b, 3);
    for (uint32_t i = 1; i <= 3; i++) buffer_u32(b, i * 10);
    put_key(b, "sample.strings", 9);
    buffer_u32(b, 8);
    buffer_u64(b, 2);
    buffer_string(b, "<s>");
    buffer_string(b, "\xe2\x96\x81the");
    put_key(b, "sample.nested", 9); /* an array of two arrays of f32 */
    buffer_u32(b, 9);
    buffer_u64(b, 2);
    for (int i = 0; i < 2; i++) {
        buffer_u32(b, 6);
        buffer_u64(b, 1);
        buffer_put(b, &f, 4);
    }
}

#define N_SAMPLE_KV 16

static void put_tensor_infos(byte_buffer *b, sample_layout *layout)
{
    uint64_t offset = 0;
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++) {
        const sample_tensor *t = &sample_tensors[i];
        layout->tensor_name_len[i] = b->size;
        buffer_string(b, t->name);
        layout->tensor_n_dims[i] = b->size;
        buffer_u32(b, t->n_dims);
        layout->tensor_ne0[i] = b->size;
        for (uint32_t d = 0; d < t->n_dims; d++) buffer_u64(b, t->ne[d]);
        layout->tensor_type[i] = b->size;
        buffer_u32(b, t->type);
        layout->tensor_offset[i] = b->size;
        buffer_u64(b, offset);
        offset += (t->n_bytes + 31) / 32 * 32;
    }
    layout->n_tensor_infos = N_SAMPLE_TENSORS;
}

void build_sample_gguf(byte_buffer *out, uint32_t version, sample_layout *layout)
{
    memset(out, 0, sizeof *out);
    memset(layout, 0, sizeof *layout);
    buffer_put(out, "GGUF", 4);
    layout->version = out->size;
    buffer_u32(out, version);
    layout->n_tensors = out->size;
    buffer_u64(out, N_SAMPLE_TENSORS);
    layout->n_kv = out->size;
    buffer_u64(out, N_SAMPLE_KV);
    put_metadata(out, layout);
    put_tensor_infos(out, layout);
    buffer_put(out, NULL, (32 - out->size % 32) % 32);
    layout->data_start = out->size;
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++) {
        size_t padded = (sample_tensors[i].n_bytes + 31) / 32 * 32;
        size_t start = out->size;
        buffer_put(out, NULL, padded);
        for (size_t j = 0; j < sample_tensors[i].n_bytes; j++)
            out->data[start + j] = (uint8_t)(i * 16 + j);
    }
}
