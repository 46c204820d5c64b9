/* The logits processors HF 4.30.2 activates for R2GenGPT, and the ranked selection that greedy
 * and beam search make from the processed scores. */
#ifndef R2GEN_GENERATE_LOGITS_H
#define R2GEN_GENERATE_LOGITS_H

#include <stdint.h>

/* RepetitionPenaltyLogitsProcessor: every distinct id of ids[0..n_ids) gets
 * s = s < 0 ? s * penalty : s / penalty, once however often it occurs. Like torch's
 * gather-then-scatter, all penalised values are computed from the unpenalised scores first;
 * `gathered` holds n_ids floats of scratch. */
void repetition_penalty(float *scores, const int32_t *ids, int n_ids, float penalty,
                        float *gathered);

/* MinNewTokensLengthLogitsProcessor: EOS becomes -inf while fewer than min_new_tokens tokens
 * were generated. */
void mask_eos_before_min(float *scores, int n_generated, int min_new_tokens, int32_t eos_id);

typedef struct candidate {
    float score;
    int64_t index; /* flat index into the scored array: row * n_vocab + token */
} candidate;

/* The k best of scores[0..n), best first, in O(n) plus O(k) per improvement (no full sort).
 * Equal scores keep the lower index first (torch.topk leaves their order unspecified on CPU;
 * torch.argmax, which greedy search uses, returns the lowest index, so this rule is the same
 * for k = 1). NaNs are passed over; returns how many candidates were found, k unless fewer
 * than k scores are numbers. Requires 1 <= k <= n. */
int top_candidates(const float *scores, int64_t n, int k, candidate *best);

#endif
