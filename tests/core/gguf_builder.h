/* Writes small GGUF files in memory for the reader's tests, remembering where each field lies so
 * that tests can corrupt exactly one of them. */
#ifndef R2GEN_TESTS_GGUF_BUILDER_H
#define R2GEN_TESTS_GGUF_BUILDER_H

#include <stddef.h>
#include <stdint.h>

typedef struct byte_buffer {
    uint8_t *data;
    size_t size;
    size_t capacity;
} byte_buffer;

void buffer_put(byte_buffer *b, const void *data, size_t n);
void buffer_u32(byte_buffer *b, uint32_t v);
void buffer_u64(byte_buffer *b, uint64_t v);
void buffer_string(byte_buffer *b, const char *s);
void buffer_free(byte_buffer *b);

/* Where the fields of the sample file lie (byte offsets into the file). */
typedef struct sample_layout {
    size_t version;
    size_t n_tensors;
    size_t n_kv;
    size_t first_key_len;     /* length field of the first metadata key */
    size_t string_value_len;  /* length field of the "sample.text" string value */
    size_t array_count;       /* count field of the "sample.list" u32 array */
    size_t tensor_name_len[8];
    size_t tensor_n_dims[8];
    size_t tensor_ne0[8];
    size_t tensor_type[8];
    size_t tensor_offset[8];
    size_t n_tensor_infos;
    size_t data_start;
} sample_layout;

/* A valid GGUF of `version` with metadata of every value type (nested arrays too) and one tensor
 * of each supported type. */
void build_sample_gguf(byte_buffer *out, uint32_t version, sample_layout *layout);

#endif
