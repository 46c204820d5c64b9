/* Random weight rows in the exact GGUF layouts, for the kernel and matmul tests: every quant and
 * packed scale byte is random; only the fp16 block scales are drawn from a sane range (random bytes
 * there would include infinities and NaNs, which no real model holds). */
#ifndef R2GEN_TESTS_RANDOM_BLOCKS_H
#define R2GEN_TESTS_RANDOM_BLOCKS_H

#include <stdint.h>

#include "core/tensor.h"

/* A small deterministic generator (xorshift64*), so failures reproduce. */
typedef struct test_rng {
    uint64_t state;
} test_rng;

uint32_t rng_u32(test_rng *rng);
float rng_uniform(test_rng *rng, float lo, float hi); /* in [lo, hi) */

/* Fill `n_rows` rows of `n` values of `type` (n a whole number of blocks). f32/f16/bf16 rows hold
 * values in [-1, 1); quantised rows have scales d, dmin in [scale_lo, scale_hi). */
void random_rows(test_rng *rng, tensor_type type, void *data, int64_t n_rows, int64_t n,
                 float scale_lo, float scale_hi);

#endif
