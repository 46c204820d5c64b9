/* The attention kernels' scalar reference (see attention.h), and the choice between it and the
 * AVX2 set. */
#include "attention.h"

#include "core/tensor.h"
#include "quant.h"

extern const attention_kernels attention_avx2;

static float element(const void *entries, int f16, size_t i)
{
    return f16 ? fp16_to_f32(((const uint16_t *)entries)[i]) : ((const float *)entries)[i];
}

static void scores_ref(const void *keys, int f16, int head_dim, const int32_t *slots, int n,
                       const float *q, size_t q_stride, int n_rows, float scale, float *scores,
                       size_t scores_stride)
{
    for (int j = 0; j < n; j++) {
        size_t key = (size_t)slots[j] * head_dim;
        for (int r = 0; r < n_rows; r++) {
            const float *qr = q + (size_t)r * q_stride;
            float sum = 0.0f;
            for (int d = 0; d < head_dim; d++) sum += element(keys, f16, key + d) * qr[d];
            scores[(size_t)r * scores_stride + j] = scale * sum;
        }
    }
}

static void mix_ref(const void *values, int f16, int head_dim, const int32_t *slots, int n,
                    const float *p, size_t p_stride, int n_rows, float *out, size_t out_stride)
{
    for (int j = 0; j < n; j++) {
        size_t value = (size_t)slots[j] * head_dim;
        for (int r = 0; r < n_rows; r++) {
            float pj = p[(size_t)r * p_stride + j], *out_r = out + (size_t)r * out_stride;
            for (int d = 0; d < head_dim; d++) out_r[d] += pj * element(values, f16, value + d);
        }
    }
}

static const attention_kernels attention_ref = {scores_ref, mix_ref};

const attention_kernels *attention_kernels_select(void)
{
    return kernels_select()->path >= KERNEL_AVX2 ? &attention_avx2 : &attention_ref;
}
