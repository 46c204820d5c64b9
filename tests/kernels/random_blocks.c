#include "random_blocks.h"

#include <string.h>

#include "kernels/quant.h"

uint32_t rng_u32(test_rng *rng)
{
    rng->state ^= rng->state >> 12;
    rng->state ^= rng->state << 25;
    rng->state ^= rng->state >> 27;
    return (uint32_t)((rng->state * 0x2545F4914F6CDD1Dull) >> 32);
}

float rng_uniform(test_rng *rng, float lo, float hi)
{
    return lo + (hi - lo) * (float)(rng_u32(rng) >> 8) / 16777216.0f;
}

static void put_fp16(uint8_t *at, float value)
{
    uint16_t h = f32_to_fp16(value);
    memcpy(at, &h, sizeof h);
}

void random_rows(test_rng *rng, tensor_type type, void *data, int64_t n_rows, int64_t n,
                 float scale_lo, float scale_hi)
{
    uint8_t *bytes = data;
    int64_t n_values = n_rows * n;
    if (type == TENSOR_F32 || type == TENSOR_F16 || type == TENSOR_BF16) {
        for (int64_t i = 0; i < n_values; i++) {
            float v = rng_uniform(rng, -1.0f, 1.0f);
            if (type == TENSOR_F32) {
                memcpy(bytes + 4 * i, &v, 4);
            } else {
                uint16_t h = type == TENSOR_F16 ? f32_to_fp16(v) : f32_to_bf16(v);
                memcpy(bytes + 2 * i, &h, 2);
            }
        }
        return;
    }
    size_t block_bytes = tensor_type_block_bytes(type);
    int64_t n_blocks = n_values / tensor_type_block_elems(type);
    for (size_t i = 0; i < (size_t)n_blocks * block_bytes; i++) bytes[i] = (uint8_t)rng_u32(rng);
    for (int64_t b = 0; b < n_blocks; b++) {
        uint8_t *block = bytes + b * block_bytes;
        switch (type) {
        case TENSOR_Q8_0:
        case TENSOR_Q4_0: put_fp16(block, rng_uniform(rng, scale_lo, scale_hi)); break;
        case TENSOR_Q4_K:
            put_fp16(block + offsetof(block_q4_K, d), rng_uniform(rng, scale_lo, scale_hi));
            put_fp16(block + offsetof(block_q4_K, dmin), rng_uniform(rng, scale_lo, scale_hi));
            break;
        case TENSOR_Q6_K:
            put_fp16(block + offsetof(block_q6_K, d), rng_uniform(rng, scale_lo, scale_hi));
            break;
        default: break;
        }
    }
}
