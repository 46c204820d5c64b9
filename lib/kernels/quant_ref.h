/* The scalar reference kernels. They define the arithmetic every SIMD version must reproduce, and
 * the SIMD sets reuse the ones that are not worth vectorising (activation quantisation is O(n) per
 * row against O(n * n_out) for the products). */
#ifndef R2GEN_KERNELS_QUANT_REF_H
#define R2GEN_KERNELS_QUANT_REF_H

#include "quant.h"

void f16_to_float_ref(const void *w, float *y, int64_t n);
void bf16_to_float_ref(const void *w, float *y, int64_t n);
void q8_0_to_float_ref(const void *w, float *y, int64_t n);
void q4_0_to_float_ref(const void *w, float *y, int64_t n);
void q4_K_to_float_ref(const void *w, float *y, int64_t n);
void q6_K_to_float_ref(const void *w, float *y, int64_t n);

/* Activation formats: float copy, q8_0 blocks, q8_K blocks, q8 groups (see quant.h). */
void copy_act_f32(const float *x, void *act, int64_t n);
void quantize_act_q8_0(const float *x, void *act, int64_t n);
void quantize_act_q8_K(const float *x, void *act, int64_t n);
void quantize_act_q8_group(const float *x, void *act, int64_t n);

/* Activation row r of a dot call. */
#define ACT_ROW(act, stride, r) ((const void *)((const char *)(act) + (size_t)(r) * (stride)))

/* The act_block_elems, act_block_bytes pair of each activation format, for the tables. */
#define FLOAT_ACT 1, sizeof(float)
#define Q8_0_ACT QK8_0, sizeof(block_q8_0)
#define Q8_K_ACT QK_K, sizeof(block_q8_K)
#define Q8_GROUP_ACT QK_GROUP, sizeof(block_q8_group)

#endif
