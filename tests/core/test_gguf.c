/* The GGUF reader: a valid file reads back exactly, and a corpus of malformed files made from it
 * (every truncation, every damaged field, random byte damage) is rejected with a status and a
 * message, never a crash or a huge allocation (run under AddressSanitizer in CI). */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "core/gguf.h"
#include "gguf_builder.h"
#include "test_paths.h"

static void check_sample_contents(const gguf_file *f, const byte_buffer *file)
{
    error err = {0};
    uint32_t u32 = 0;
    float f32 = 0;
    char *text = NULL;
    CHECK(gguf_n_kv(f) == 16, "n_kv %zu", gguf_n_kv(f));
    CHECK(gguf_get_u32(f, "general.alignment", &u32, &err) == R2GEN_OK && u32 == 32, "%u", u32);
    CHECK(gguf_get_u32(f, "sample.u16", &u32, &err) == R2GEN_OK && u32 == 0x1234, "%u", u32);
    CHECK(gguf_find(f, "sample.i8")->as.i64 == -2, "i8");
    CHECK(gguf_find(f, "sample.i16")->as.i64 == -2, "i16");
    CHECK(gguf_find(f, "sample.i64")->as.i64 == -5, "i64");
    CHECK(gguf_find(f, "sample.u64")->as.u64 == 1ull << 40, "u64");
    CHECK(gguf_find(f, "sample.f64")->as.f64 == -1.5, "f64");
    CHECK(gguf_find(f, "sample.bool")->as.boolean == 1, "bool");
    CHECK(gguf_get_f32(f, "sample.f32", &f32, &err) == R2GEN_OK && f32 == 0.25f, "f32");
    CHECK(gguf_get_u32(f, "sample.i32", &u32, &err) == R2GEN_ERR_MODEL_FORMAT,
          "a negative value is not a u32");
    CHECK(gguf_get_u32(f, "sample.u64", &u32, &err) == R2GEN_ERR_MODEL_FORMAT, "too big for u32");
    CHECK(gguf_get_u32(f, "missing.key", &u32, &err) == R2GEN_ERR_MODEL_FORMAT &&
              strstr(err.message, "missing.key"),
          "%s", err.message);
    CHECK(gguf_get_u32_or(f, "missing.key", 7, &u32, &err) == R2GEN_OK && u32 == 7, "fallback");
    CHECK(gguf_get_string(f, "sample.text", &text, &err) == R2GEN_OK &&
              !strcmp(text, "Human: <Img>"),
          "string");
    free(text);
    uint32_t list[3];
    size_t n = 0;
    CHECK(gguf_get_u32_array(f, "sample.list", list, 3, &n, &err) == R2GEN_OK && n == 3 &&
              list[2] == 30,
          "u32 array");
    CHECK(gguf_get_u32_array(f, "sample.list", list, 2, &n, &err) == R2GEN_ERR_MODEL_FORMAT,
          "capacity respected");
    const gguf_value *strings = gguf_find(f, "sample.strings");
    const uint8_t *at = strings->elems;
    gguf_string first = gguf_array_string(&at), second = gguf_array_string(&at);
    CHECK(first.len == 3 && !memcmp(first.data, "<s>", 3) && second.len == 6, "string array");
    CHECK(gguf_find(f, "sample.nested")->count == 2, "nested array");

    CHECK(gguf_n_tensors(f) == 7, "n_tensors");
    const tensor *q4k = gguf_find_tensor(f, "weights.q4_K");
    CHECK(q4k && q4k->type == TENSOR_Q4_K && q4k->n_bytes == 144 && q4k->ne[0] == 256, "q4_K");
    const tensor *w = gguf_find_tensor(f, "weights.f32");
    CHECK(w && (const uint8_t *)w->data >= file->data &&
              ((const uint8_t *)w->data - file->data) % 32 == 0 && w->ne[1] == 3,
          "f32 tensor placement");
    CHECK(gguf_find_tensor(f, "weights.none") == NULL, "absent tensor");
    const tensor *t;
    int64_t want[2] = {4, 3}, wrong[2] = {3, 4};
    CHECK(gguf_require_tensor(f, "weights.f32", GGUF_ALLOW_F32, 2, want, &t, &err) == R2GEN_OK,
          "%s", err.message);
    CHECK(gguf_require_tensor(f, "weights.f32", GGUF_ALLOW_F32, 2, wrong, &t, &err) ==
                  R2GEN_ERR_MODEL_FORMAT &&
              strstr(err.message, "weights.f32"),
          "%s", err.message);
    CHECK(gguf_require_tensor(f, "weights.f32", GGUF_ALLOW_F16, 2, want, &t, &err) ==
              R2GEN_ERR_MODEL_FORMAT,
          "type check");
}

static r2gen_status open_bytes(const uint8_t *data, size_t size, error *err)
{
    gguf_file *f = NULL;
    r2gen_status status = gguf_open_memory(data, size, &f, err);
    CHECK((status == R2GEN_OK) == (f != NULL), "out pointer set only on success");
    CHECK(status == R2GEN_OK || err->message[0], "a failure has a message");
    gguf_close(f);
    return status;
}

/* Copy the sample, overwrite `n` bytes at `offset` with `value`, and expect `want`. */
static void expect_patched(const byte_buffer *good, size_t offset, const void *value, size_t n,
                           r2gen_status want, const char *what)
{
    uint8_t *copy = malloc(good->size);
    memcpy(copy, good->data, good->size);
    memcpy(copy + offset, value, n);
    error err = {0};
    r2gen_status status = open_bytes(copy, good->size, &err);
    CHECK(status == want, "%s: status %d (%s), expected %d", what, status, err.message, want);
    free(copy);
}

static void expect_u64(const byte_buffer *good, size_t offset, uint64_t v, const char *what)
{
    expect_patched(good, offset, &v, sizeof v, R2GEN_ERR_MODEL_FORMAT, what);
}

static void expect_u32(const byte_buffer *good, size_t offset, uint32_t v, r2gen_status want,
                       const char *what)
{
    expect_patched(good, offset, &v, sizeof v, want, what);
}

/* A type this reader refuses is named as llama.cpp's users know it, beside what it reads. */
static void test_unsupported_type_named(const byte_buffer *good, const sample_layout *l)
{
    uint8_t *copy = malloc(good->size);
    memcpy(copy, good->data, good->size);
    uint32_t q5_K = 13;
    memcpy(copy + l->tensor_type[0], &q5_K, sizeof q5_K);
    error err = {0};
    CHECK(open_bytes(copy, good->size, &err) == R2GEN_ERR_UNSUPPORTED &&
              strstr(err.message, "type 13 (q5_K)") && strstr(err.message, "q4_K and q6_K"),
          "q5_K refused by name: %s", err.message);
    free(copy);
}

static void test_damaged_fields(const byte_buffer *good, const sample_layout *l)
{
    expect_patched(good, 0, "GGUG", 4, R2GEN_ERR_MODEL_FORMAT, "wrong magic");
    expect_u32(good, l->version, 1, R2GEN_ERR_UNSUPPORTED, "version 1");
    expect_u64(good, l->n_tensors, 1ull << 63, "2^63 tensors");
    expect_u64(good, l->n_tensors, 8, "one tensor too many");
    expect_u64(good, l->n_kv, 1ull << 63, "2^63 metadata pairs");
    expect_u64(good, l->n_kv, 17, "one metadata pair too many");
    expect_u64(good, l->first_key_len, good->size, "key longer than the file");
    expect_u64(good, l->first_key_len, ~0ull, "key length 2^64-1");
    expect_u64(good, l->string_value_len, ~0ull - 3, "string value longer than the file");
    expect_u64(good, l->array_count, 1ull << 62, "array count 2^62");
    expect_u64(good, l->array_count, 1ull << 61, "array bytes overflow");
    expect_u64(good, l->tensor_name_len[2], 1ull << 40, "tensor name longer than the file");
    expect_u32(good, l->tensor_n_dims[0], 5, R2GEN_ERR_MODEL_FORMAT, "five dimensions");
    expect_u32(good, l->tensor_n_dims[0], 0, R2GEN_ERR_MODEL_FORMAT, "zero dimensions");
    expect_u64(good, l->tensor_ne0[0], 0, "zero-sized dimension");
    expect_u64(good, l->tensor_ne0[0], 1ull << 63, "dimension 2^63");
    expect_u64(good, l->tensor_ne0[0] + 8, 1ull << 62, "element count overflow");
    expect_u64(good, l->tensor_ne0[2], 33, "q8_0 row not whole blocks");
    expect_u32(good, l->tensor_type[0], 99, R2GEN_ERR_UNSUPPORTED, "unknown tensor type");
    expect_u32(good, l->tensor_type[0], 3, R2GEN_ERR_UNSUPPORTED, "q4_1 is not supported");
    expect_u64(good, l->tensor_offset[1], 8, "misaligned tensor data");
    expect_u64(good, l->tensor_offset[1], 0, "overlapping tensors");
    expect_u64(good, l->tensor_offset[6], 1ull << 40, "tensor past the end");
    expect_u64(good, l->tensor_offset[6], ~0ull - 31, "tensor offset overflow");
    /* "weights.f32" renamed "weights.f16": a duplicate */
    expect_patched(good, l->tensor_name_len[0] + 8 + strlen("weights."), "f16", 3,
                   R2GEN_ERR_MODEL_FORMAT, "duplicate tensor names");
    /* "general.alignment" -> "general.alignmenu" keeps the file valid; value 0 and 3 are not */
    size_t alignment_value = l->first_key_len + 8 + strlen("general.alignment") + 4;
    expect_u32(good, alignment_value, 0, R2GEN_ERR_MODEL_FORMAT, "alignment 0");
    expect_u32(good, alignment_value, 48, R2GEN_ERR_MODEL_FORMAT, "alignment not a power of 2");
    /* "sample.u16" renamed "sample.i16": a duplicate metadata key */
    const uint8_t *key = memmem(good->data, good->size, "sample.u16", 10);
    expect_patched(good, (size_t)(key - good->data), "sample.i16", 10, R2GEN_ERR_MODEL_FORMAT,
                   "duplicate metadata key");
}

/* Every cut before the end of the last tensor's data (the padding after it is not needed). */
static void test_truncations(const byte_buffer *good)
{
    const size_t last_tensor_padding = 32 - 8;
    int failures = 0;
    for (size_t size = 0; size < good->size - last_tensor_padding; size++) {
        uint8_t *prefix = malloc(size ? size : 1); /* exact size: ASan sees any over-read */
        memcpy(prefix, good->data, size);
        error err = {0};
        r2gen_status status = open_bytes(prefix, size, &err);
        if (status != R2GEN_ERR_MODEL_FORMAT) failures++;
        free(prefix);
    }
    CHECK(failures == 0, "%d truncations were not rejected as malformed", failures);
}

/* Deterministic pseudo-random damage: whatever the status, nothing may crash or leak. */
static void test_random_damage(const byte_buffer *good)
{
    uint64_t state = 0x2545F4914F6CDD1Dull;
    int accepted = 0;
    for (int round = 0; round < 20000; round++) {
        uint8_t *copy = malloc(good->size);
        memcpy(copy, good->data, good->size);
        int n_flips = 1 + round % 4;
        for (int i = 0; i < n_flips; i++) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            size_t header_size = good->size / 2; /* damage the structure, not only the data */
            copy[state % header_size] = (uint8_t)(state >> 32);
        }
        error err = {0};
        if (open_bytes(copy, good->size, &err) == R2GEN_OK) accepted++;
        free(copy);
    }
    CHECK(accepted < 20000, "damage must be noticed sometimes (%d accepted)", accepted);
}

static void test_files(const byte_buffer *good)
{
    char path[256];
    error err = {0};
    gguf_file *f = NULL;
    scratch_path(path, sizeof path, "sample.gguf");
    FILE *out = fopen(path, "wb");
    fwrite(good->data, 1, good->size, out);
    fclose(out);
    CHECK(gguf_open(path, &f, &err) == R2GEN_OK, "%s", err.message);
    if (f) check_sample_contents(f, &(byte_buffer){0});
    gguf_close(f);
    out = fopen(path, "wb");
    fclose(out);
    CHECK(gguf_open(path, &f, &err) == R2GEN_ERR_MODEL_FORMAT && f == NULL, "empty: %s",
          err.message);
    remove(path);
    CHECK(gguf_open(path, &f, &err) == R2GEN_ERR_IO && strstr(err.message, path), "absent: %s",
          err.message);
    CHECK(gguf_open(".", &f, &err) == R2GEN_ERR_IO, "directory: %s", err.message);
}

int main(void)
{
    for (uint32_t version = 2; version <= 3; version++) {
        byte_buffer good;
        sample_layout layout;
        build_sample_gguf(&good, version, &layout);
        gguf_file *f = NULL;
        error err = {0};
        CHECK(gguf_open_memory(good.data, good.size, &f, &err) == R2GEN_OK, "v%u: %s", version,
              err.message);
        if (f) {
            CHECK(gguf_version(f) == version, "version");
            check_sample_contents(f, &good);
        }
        gguf_close(f);
        test_damaged_fields(&good, &layout);
        test_unsupported_type_named(&good, &layout);
        test_truncations(&good);
        test_random_damage(&good);
        if (version == 3) test_files(&good);
        buffer_free(&good);
    }
    return check_summary();
}
