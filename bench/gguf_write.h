/* A small streaming GGUF v3 writer for the benchmark models: metadata first, then tensor
 * descriptions, then each tensor's bytes produced by a callback, so a 7 GB file never has to
 * fit in memory. */
#ifndef R2GEN_BENCH_GGUF_WRITE_H
#define R2GEN_BENCH_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GGUF_WRITE_MAX_TENSORS 4096
#define GGUF_WRITE_ALIGNMENT 32

struct gguf_write_tensor;

/* Writes n_bytes of the tensor's data into out: called with whole blocks of the tensor's type,
 * at most about 1 MiB at a time. */
typedef void (*gguf_fill_fn)(void *user, const struct gguf_write_tensor *t, uint8_t *out,
                             size_t n_bytes);

typedef struct gguf_write_tensor {
    char name[96];
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[4];
    uint64_t n_bytes;
} gguf_write_tensor;

typedef struct gguf_writer {
    FILE *meta;          /* metadata key/values, collected in memory until the file is written */
    char *meta_bytes;
    size_t meta_size;
    uint64_t n_kv;
    gguf_write_tensor tensors[GGUF_WRITE_MAX_TENSORS];
    size_t n_tensors;
} gguf_writer;

void gguf_writer_init(gguf_writer *w);
void gguf_put_u32(gguf_writer *w, const char *key, uint32_t value);
void gguf_put_f32(gguf_writer *w, const char *key, float value);
void gguf_put_string(gguf_writer *w, const char *key, const char *value);
void gguf_put_u32_array(gguf_writer *w, const char *key, const uint32_t *values, size_t n);
void gguf_put_i32_array(gguf_writer *w, const char *key, const int32_t *values, size_t n);
void gguf_put_f32_array(gguf_writer *w, const char *key, const float *values, size_t n);
void gguf_put_string_array(gguf_writer *w, const char *key, const char *const *values, size_t n);

/* Declare a tensor; n_bytes is computed from the type's block size. */
void gguf_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                     const uint64_t *ne);

/* Write the file, calling fill for every tensor in declaration order. Returns 0 on success. */
int gguf_write_file(gguf_writer *w, const char *path, gguf_fill_fn fill, void *user);

#endif
