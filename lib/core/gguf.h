/* GGUF model container: maps a file read-only, validates every count, length and offset against
 * the file size, and answers look-ups of metadata and tensors. Nothing is copied: tensor data and
 * strings point into the mapping, which lives until gguf_close. */
#ifndef R2GEN_CORE_GGUF_H
#define R2GEN_CORE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

typedef enum gguf_value_type {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12,
} gguf_value_type;

/* A string inside the mapping: not NUL-terminated. */
typedef struct gguf_string {
    const char *data;
    uint64_t len;
} gguf_string;

/* One metadata value. Scalars are decoded; arrays point at their first element in the file
 * (elements of fixed size are contiguous little-endian values; string elements are walked with
 * gguf_array_string). */
typedef struct gguf_value {
    gguf_value_type type;
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
        int boolean;
        gguf_string str;
    } as;
    /* for GGUF_ARRAY: */
    gguf_value_type elem_type;
    uint64_t count;
    const uint8_t *elems;
    const uint8_t *elems_end;
} gguf_value;

typedef struct gguf_file gguf_file;

/* Open and validate. On failure returns NULL status with err filled (R2GEN_ERR_IO,
 * R2GEN_ERR_MODEL_FORMAT, R2GEN_ERR_UNSUPPORTED naming an unknown tensor type, or
 * R2GEN_ERR_OUT_OF_MEMORY). */
r2gen_status gguf_open(const char *path, gguf_file **out, error *err);
/* The same over a caller's buffer, which must outlive the gguf_file (used by tests and fuzzing). */
r2gen_status gguf_open_memory(const void *data, size_t size, gguf_file **out, error *err);
void gguf_close(gguf_file *file);

uint32_t gguf_version(const gguf_file *file);
const char *gguf_path(const gguf_file *file);

/* Metadata. gguf_find returns NULL when the key is absent. */
size_t gguf_n_kv(const gguf_file *file);
const gguf_value *gguf_find(const gguf_file *file, const char *key);
const char *gguf_key_at(const gguf_file *file, size_t i, size_t *len);

/* Typed getters: R2GEN_OK, or R2GEN_ERR_MODEL_FORMAT when the key is missing (unless a default is
 * allowed by the *_or variants) or has a type that cannot hold the request. Integers accept any
 * integer type whose value fits. */
r2gen_status gguf_get_u32(const gguf_file *file, const char *key, uint32_t *out, error *err);
r2gen_status gguf_get_u32_or(const gguf_file *file, const char *key, uint32_t fallback,
                             uint32_t *out, error *err);
r2gen_status gguf_get_f32(const gguf_file *file, const char *key, float *out, error *err);
r2gen_status gguf_get_f32_or(const gguf_file *file, const char *key, float fallback, float *out,
                             error *err);
/* Copies a string value into a new NUL-terminated heap string (caller frees). */
r2gen_status gguf_get_string(const gguf_file *file, const char *key, char **out, error *err);
/* An array of numbers of any integer or float element type, converted. `n` is the count;
 * out must hold `capacity` values; fails if count > capacity. */
r2gen_status gguf_get_u32_array(const gguf_file *file, const char *key, uint32_t *out,
                                size_t capacity, size_t *n, error *err);
r2gen_status gguf_get_f32_array(const gguf_file *file, const char *key, float *out,
                                size_t capacity, size_t *n, error *err);

/* Walk a string array: *cursor starts at value->elems; each call yields the next string.
 * The reader has already validated every element. */
gguf_string gguf_array_string(const uint8_t **cursor);

/* Tensors. */
size_t gguf_n_tensors(const gguf_file *file);
const tensor *gguf_tensor_at(const gguf_file *file, size_t i);
const tensor *gguf_find_tensor(const gguf_file *file, const char *name);

/* Look up a tensor that a model needs and check its type is one of `allowed_types` (a bit mask of
 * (1u << type) over tensor types below 32, plus BF16 through GGUF_ALLOW_BF16) and its shape is
 * exactly ne[0..n_dims). Fails with R2GEN_ERR_MODEL_FORMAT naming the tensor. */
#define GGUF_ALLOW_F32 (1ull << TENSOR_F32)
#define GGUF_ALLOW_F16 (1ull << TENSOR_F16)
#define GGUF_ALLOW_BF16 (1ull << TENSOR_BF16)
#define GGUF_ALLOW_Q8_0 (1ull << TENSOR_Q8_0)
#define GGUF_ALLOW_Q4_0 (1ull << TENSOR_Q4_0)
#define GGUF_ALLOW_Q4_K (1ull << TENSOR_Q4_K)
#define GGUF_ALLOW_Q6_K (1ull << TENSOR_Q6_K)
#define GGUF_ALLOW_FLOAT (GGUF_ALLOW_F32 | GGUF_ALLOW_F16 | GGUF_ALLOW_BF16)
#define GGUF_ALLOW_ANY                                                                             \
    (GGUF_ALLOW_FLOAT | GGUF_ALLOW_Q8_0 | GGUF_ALLOW_Q4_0 | GGUF_ALLOW_Q4_K | GGUF_ALLOW_Q6_K)

/* A hint that the model no longer reads t's data (a stage copied it into a layout of its own):
 * the pages wholly inside it are dropped from memory and read back from the file if ever touched
 * again. Does nothing for files opened with gguf_open_memory. */
void gguf_release_tensor(const gguf_file *file, const tensor *t);

r2gen_status gguf_require_tensor(const gguf_file *file, const char *name, uint64_t allowed_types,
                                 int n_dims, const int64_t *ne, const tensor **out, error *err);

#endif
