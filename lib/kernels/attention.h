/* Attention of decode rows against a KV cache of f32 or fp16 entries: the keys or values of one
 * head, picked by slot, against up to KERNEL_MAX_ROWS query rows at once, so each cached entry is
 * read (and converted) once for all the rows that share it. A scalar reference and an AVX2 + F16C
 * version (which the AVX-512 path uses too: these loops are bound by memory and the conversion,
 * not by vector width). */
#ifndef R2GEN_KERNELS_ATTENTION_H
#define R2GEN_KERNELS_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

typedef struct attention_kernels {
    /* scores[r * scores_stride + j] = scale * dot(q + r * q_stride, key at slots[j]) for j < n
     * and r < n_rows <= KERNEL_MAX_ROWS; entry s of `keys` is head_dim values from element
     * s * head_dim, floats or (f16 != 0) fp16. */
    void (*scores)(const void *keys, int f16, int head_dim, const int32_t *slots, int n,
                   const float *q, size_t q_stride, int n_rows, float scale, float *scores,
                   size_t scores_stride);
    /* out[r * out_stride + d] += sum_j p[r * p_stride + j] * value at slots[j], element d, for
     * d < head_dim, j < n and r < n_rows <= KERNEL_MAX_ROWS. */
    void (*mix)(const void *values, int f16, int head_dim, const int32_t *slots, int n,
                const float *p, size_t p_stride, int n_rows, float *out, size_t out_stride);
} attention_kernels;

/* The attention kernels of the kernel path kernels_select() picks. */
const attention_kernels *attention_kernels_select(void);

#endif
