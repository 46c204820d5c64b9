#include "gguf_write.h"

#include <stdlib.h>
#include <string.h>

static void meta_bytes(gguf_writer *w, const void *data, size_t n) { fwrite(data, 1, n, w->meta); }
static void meta_u32(gguf_writer *w, uint32_t v) { meta_bytes(w, &v, 4); }
static void meta_u64(gguf_writer *w, uint64_t v) { meta_bytes(w, &v, 8); }

static void meta_string(gguf_writer *w, const char *s)
{
    meta_u64(w, strlen(s));
    meta_bytes(w, s, strlen(s));
}

static void meta_key(gguf_writer *w, const char *key, uint32_t type)
{
    meta_string(w, key);
    meta_u32(w, type);
    w->n_kv++;
}

void gguf_writer_init(gguf_writer *w)
{
    memset(w, 0, sizeof *w);
    w->meta = open_memstream(&w->meta_bytes, &w->meta_size);
}

void gguf_put_u32(gguf_writer *w, const char *key, uint32_t value)
{
    meta_key(w, key, 4);
    meta_u32(w, value);
}

void gguf_put_f32(gguf_writer *w, const char *key, float value)
{
    meta_key(w, key, 6);
    meta_bytes(w, &value, 4);
}

void gguf_put_string(gguf_writer *w, const char *key, const char *value)
{
    meta_key(w, key, 8);
    meta_string(w, value);
}

static void put_array(gguf_writer *w, const char *key, uint32_t elem_type, const void *values,
                      size_t n, size_t elem_size)
{
    meta_key(w, key, 9);
    meta_u32(w, elem_type);
    meta_u64(w, n);
    meta_bytes(w, values, n * elem_size);
}

void gguf_put_u32_array(gguf_writer *w, const char *key, const uint32_t *values, size_t n)
{
    put_array(w, key, 4, values, n, 4);
}

void gguf_put_i32_array(gguf_writer *w, const char *key, const int32_t *values, size_t n)
{
    put_array(w, key, 5, values, n, 4);
}

void gguf_put_f32_array(gguf_writer *w, const char *key, const float *values, size_t n)
{
    put_array(w, key, 6, values, n, 4);
}

void gguf_put_string_array(gguf_writer *w, const char *key, const char *const *values, size_t n)
{
    meta_key(w, key, 9);
    meta_u32(w, 8);
    meta_u64(w, n);
    for (size_t i = 0; i < n; i++) meta_string(w, values[i]);
}

/* Values and bytes per block of the ggml types the benchmarks write. */
static void block_geometry(uint32_t type, uint64_t *elems, uint64_t *bytes)
{
    switch (type) {
    case 0: *elems = 1, *bytes = 4; break;
    case 8: *elems = 32, *bytes = 34; break;
    case 2: *elems = 32, *bytes = 18; break;
    case 12: *elems = 256, *bytes = 144; break;
    case 14: *elems = 256, *bytes = 210; break;
    default: *elems = 1, *bytes = 2; break; /* f16, bf16 */
    }
}

static uint64_t row_bytes(uint32_t type, uint64_t n)
{
    uint64_t elems, bytes;
    block_geometry(type, &elems, &bytes);
    return n / elems * bytes;
}

void gguf_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                     const uint64_t *ne)
{
    gguf_write_tensor *t = &w->tensors[w->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    uint64_t rows = 1;
    for (uint32_t d = 0; d < 4; d++) {
        t->ne[d] = d < n_dims ? ne[d] : 1;
        if (d > 0) rows *= t->ne[d];
    }
    t->n_bytes = row_bytes(type, t->ne[0]) * rows;
}

static uint64_t aligned(uint64_t v) { return (v + GGUF_WRITE_ALIGNMENT - 1) / GGUF_WRITE_ALIGNMENT * GGUF_WRITE_ALIGNMENT; }

static void write_padding(FILE *f, uint64_t n)
{
    static const uint8_t zeros[GGUF_WRITE_ALIGNMENT];
    fwrite(zeros, 1, n, f);
}

static void write_tensor_data(FILE *f, const gguf_write_tensor *t, gguf_fill_fn fill, void *user,
                              uint8_t *chunk, size_t capacity)
{
    uint64_t elems, bytes;
    block_geometry(t->type, &elems, &bytes);
    size_t chunk_size = capacity / bytes * bytes;
    for (uint64_t done = 0; done < t->n_bytes;) {
        size_t n = t->n_bytes - done < chunk_size ? (size_t)(t->n_bytes - done) : chunk_size;
        fill(user, t, chunk, n);
        fwrite(chunk, 1, n, f);
        done += n;
    }
    write_padding(f, aligned(t->n_bytes) - t->n_bytes);
}

int gguf_write_file(gguf_writer *w, const char *path, gguf_fill_fn fill, void *user)
{
    gguf_put_u32(w, "general.alignment", GGUF_WRITE_ALIGNMENT);
    fclose(w->meta);
    FILE *f = fopen(path, "wb");
    const size_t chunk_size = 1 << 20;
    uint8_t *chunk = malloc(chunk_size);
    if (!f || !chunk) {
        free(chunk);
        if (f) fclose(f);
        free(w->meta_bytes);
        return -1;
    }
    uint32_t version = 3;
    uint64_t n_tensors = w->n_tensors;
    fwrite("GGUF", 1, 4, f);
    fwrite(&version, 4, 1, f);
    fwrite(&n_tensors, 8, 1, f);
    fwrite(&w->n_kv, 8, 1, f);
    fwrite(w->meta_bytes, 1, w->meta_size, f);
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const gguf_write_tensor *t = &w->tensors[i];
        uint64_t len = strlen(t->name);
        fwrite(&len, 8, 1, f);
        fwrite(t->name, 1, len, f);
        fwrite(&t->n_dims, 4, 1, f);
        fwrite(t->ne, 8, t->n_dims, f);
        fwrite(&t->type, 4, 1, f);
        fwrite(&offset, 8, 1, f);
        offset += aligned(t->n_bytes);
    }
    write_padding(f, aligned((uint64_t)ftell(f)) - (uint64_t)ftell(f));
    for (size_t i = 0; i < w->n_tensors; i++)
        write_tensor_data(f, &w->tensors[i], fill, user, chunk, chunk_size);
    free(chunk);
    free(w->meta_bytes);
    return fclose(f) == 0 ? 0 : -1;
}
