/* Sampling as HF 4.30.2's `sample` with its logits warpers, applied in HF's order after the
 * logits processors: temperature -> top-k -> top-p, then softmax and one multinomial draw.
 * The random numbers come from a xoshiro256** generator owned by the call (seeded through
 * splitmix64), so a seed always gives the same tokens; torch's generator is not reproduced. */
#ifndef R2GEN_GENERATE_SAMPLE_H
#define R2GEN_GENERATE_SAMPLE_H

#include <stdint.h>

#include "core/error.h"
#include "generate/logits.h"

typedef struct rng {
    uint64_t state[4];
} rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_next(rng *r);
double rng_uniform(rng *r); /* [0, 1), 53 random bits */

typedef struct sampler {
    float temperature; /* 1 = off */
    int top_k;         /* 0 = off */
    float top_p;       /* 1 = off */
    rng rng;
    candidate *pool;   /* n_vocab entries of scratch: the tokens still in the running */
} sampler;

r2gen_status sampler_init(sampler *s, float temperature, int top_k, float top_p, uint64_t seed,
                          int n_vocab, error *err);
void sampler_free(sampler *s);

/* Warp the processed scores (modified in place) and draw a token; -1 when every score is -inf
 * or NaN, so there is nothing to draw from. */
int32_t sampler_pick(sampler *s, float *scores, int n_vocab);

#endif
