/* Text generation with HF transformers 4.30.2 `generate(inputs_embeds=...)` semantics for a
 * decoder-only model and batch 1: greedy search, beam search (BeamSearchScorer) and sampling,
 * with the repetition-penalty and min-new-tokens logits processors.
 *
 * The model is reached only through `decoder`, so the decision logic can be driven by LLaMA
 * (llama_decoder.h) or by a scripted fake in the tests. */
#ifndef R2GEN_GENERATE_GENERATE_H
#define R2GEN_GENERATE_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "ops/compute.h"

/* A model that continues up to n_rows sequences at once. */
typedef struct decoder {
    void *self;
    int n_vocab;
    /* Run the n_positions x n_embd prompt embeddings (causal, positions 0..n-1) and write the
     * n_vocab logits of the last position. Starts a new generation: earlier history is dropped. */
    r2gen_status (*prefill)(void *self, const compute *cpu, const float *embeddings,
                            int n_positions, float *logits, error *err);
    /* Row r feeds tokens[r] after the history of row parent_rows[r] of the previous decode step
     * (on the first decode after prefill every row continues the prompt); writes
     * n_rows x n_vocab logits. */
    r2gen_status (*decode)(void *self, const compute *cpu, const int32_t *tokens,
                           const int32_t *parent_rows, int n_rows, float *logits, error *err);
} decoder;

typedef struct generate_config {
    int num_beams;              /* 1 = greedy (or sampling); > 1 = beam search */
    int min_new_tokens;         /* EOS is masked until this many tokens were generated */
    int max_new_tokens;         /* >= 1 */
    float repetition_penalty;   /* 1.0 = off; > 0 */
    float length_penalty;       /* beam search: score = sum_logprobs / len ** length_penalty */
    int do_sample;              /* 1 = sample (num_beams must be 1) */
    float temperature;          /* sampling: > 0; 1.0 = off */
    int top_k;                  /* sampling: 0 = off */
    float top_p;                /* sampling: in (0, 1]; 1.0 = off */
    uint64_t seed;              /* sampling: the same seed gives the same tokens */
    int32_t bos_id, eos_id;
    int32_t pad_id;             /* checked only: a batch of one never pads */
    int eos_disabled;           /* benchmarks: EOS is an ordinary token, never stops the search */
    /* Called after every step with the number of steps done; non-zero cancels. May be NULL. */
    int (*progress)(void *user, int step, int max_steps);
    /* Greedy and sampling: called with every new token, EOS included; non-zero cancels.
     * May be NULL. */
    int (*on_token)(void *user, int32_t id);
    /* Beam search, for tracing: the new beams of every step in row order (token, the row it
     * continues, cumulative score). May be NULL. */
    void (*on_beams)(void *user, int step, const int32_t *tokens, const int32_t *parent_rows,
                     const float *scores, int num_beams);
    void *user;
} generate_config;

typedef struct generate_result {
    /* Exactly what HF returns: bos (the never-fed input_ids[0]) first, then the new tokens,
     * ending with eos when the winner stopped on it. malloc'ed; generate_result_free. */
    int32_t *sequence;
    size_t n;
    double score;        /* beam search: the winning hypothesis' score; 0 for greedy/sampling */
    int stopped_by_eos;  /* the winner ended with eos */
} generate_result;

/* Generate from prompt embeddings (n_positions rows of the model's width, used as given).
 * The decoder must hold num_beams rows and n_positions + max_new_tokens positions.
 * On failure or cancel (R2GEN_ERR_CANCELLED) *out is left empty and nothing is allocated. */
r2gen_status generate_run(const decoder *d, const compute *cpu, const float *prompt_embeddings,
                          int n_positions, const generate_config *cfg, generate_result *out,
                          error *err);

void generate_result_free(generate_result *r);

#endif
