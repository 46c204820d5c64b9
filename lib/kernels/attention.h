/* Attention of decode rows against an fp16 KV cache: the keys or values of one head, picked by
 * slot, against up to KERNEL_MAX_ROWS query rows at once, so each cached entry is read and
 * converted once for all the rows that share it. A scalar reference and an AVX2 + F16C version
 * (which the AVX-512 path uses too: these loops are bound by the fp16 conversion and memory,
 * not by vector width). */
#ifndef R2GEN_KERNELS_ATTENTION_H
#define R2GEN_KERNELS_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

typedef struct attention_kernels {
    /* scores[r * scores_stride + j] = scale * dot(q + r * q_stride, keys + slots[j] * head_dim)
     * for j < n and r < n_rows <= KERNEL_MAX_ROWS. */
    void (*scores_f16)(const uint16_t *keys, int head_dim, const int32_t *slots, int n,
                       const float *q, size_t q_stride, int n_rows, float scale, float *scores,
                       size_t scores_stride);
    /* out[r * out_stride + d] += sum_j p[r * p_stride + j] * values[slots[j] * head_dim + d]
     * for d < head_dim, j < n and r < n_rows <= KERNEL_MAX_ROWS. */
    void (*mix_f16)(const uint16_t *values, int head_dim, const int32_t *slots, int n,
                    const float *p, size_t p_stride, int n_rows, float *out, size_t out_stride);
} attention_kernels;

/* The attention kernels of the kernel path kernels_select() picks. */
const attention_kernels *attention_kernels_select(void);

#endif
