/* The tensor type every stage works with: a view of weights held elsewhere (usually the mmapped
 * GGUF file). Shapes are GGUF-style: ne[0] is the innermost dimension, so a Linear weight of
 * PyTorch shape [out, in] has ne = {in, out} and is stored as `out` rows of `in` values. */
#ifndef R2GEN_CORE_TENSOR_H
#define R2GEN_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

/* ggml's type numbering, which is what GGUF files store. */
typedef enum tensor_type {
    TENSOR_F32 = 0,
    TENSOR_F16 = 1,
    TENSOR_Q4_0 = 2,
    TENSOR_Q8_0 = 8,
    TENSOR_Q4_K = 12,
    TENSOR_Q6_K = 14,
    TENSOR_BF16 = 30,
} tensor_type;
/* The names of the types above, for messages that list what the library reads. */
#define TENSOR_TYPE_NAMES "f32, f16, bf16, q8_0, q4_0, q4_K and q6_K"

#define TENSOR_MAX_DIMS 4

typedef struct tensor {
    const char *name;
    tensor_type type;
    int n_dims;
    int64_t ne[TENSOR_MAX_DIMS]; /* unused dimensions are 1 */
    const void *data;
    size_t n_bytes;
} tensor;

/* Block geometry of a type: `block_elems` values stored in `block_bytes` bytes.
 * Returns 0 for a type id the library does not know. */
int tensor_type_known(uint32_t type);
int64_t tensor_type_block_elems(tensor_type type);
size_t tensor_type_block_bytes(tensor_type type);
/* "f32", "q4_K", ...; ggml's name for a type the library does not read ("q5_K"); "unknown" for
 * an id ggml does not define either. */
const char *tensor_type_name(uint32_t type);

/* Bytes of one row of n values; 0 when n is not a whole number of blocks. */
size_t tensor_row_bytes(tensor_type type, int64_t n);

int64_t tensor_n_elems(const tensor *t);
int64_t tensor_n_rows(const tensor *t); /* product of ne[1..] */
const void *tensor_row(const tensor *t, int64_t row);

/* IEEE half and bfloat16 conversions, exact in both directions where the format allows. */
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

#endif
