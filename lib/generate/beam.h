/* BeamHypotheses of HF transformers 4.30.2 (early_stopping=False): the n-best list of finished
 * hypotheses of one beam search. Scores, the worst score and the is_done test are doubles, as
 * Python floats are; the storage for the ids is allocated once up front. */
#ifndef R2GEN_GENERATE_BEAM_H
#define R2GEN_GENERATE_BEAM_H

#include <stdint.h>

#include "core/error.h"

typedef struct hypothesis {
    double score;          /* sum_logprobs / len ** length_penalty */
    int len;               /* ids, the leading bos included, the eos excluded */
    int finished_by_eos;
    int32_t *ids;          /* one of the beam_hypotheses' storage slots */
} hypothesis;

typedef struct beam_hypotheses {
    int num_beams;
    int max_len;            /* longest hypothesis: max_new_tokens + 1 */
    double length_penalty;
    double worst_score;     /* HF starts it at 1e9 */
    int n;                  /* hypotheses kept, <= num_beams */
    /* num_beams + 1 entries in insertion order, as Python's list: entries [0, n) are kept,
     * the others own free storage slots. */
    hypothesis *list;
    int32_t *storage;
} beam_hypotheses;

r2gen_status beam_hypotheses_init(beam_hypotheses *h, int num_beams, int max_len,
                                  double length_penalty, error *err);
void beam_hypotheses_free(beam_hypotheses *h);

/* BeamHypotheses.add: keep ids[0..len) if fewer than num_beams are stored or it scores above
 * the worst; past num_beams the lowest (the earliest of equals) is dropped. */
void beam_hypotheses_add(beam_hypotheses *h, const int32_t *ids, int len, double sum_logprobs,
                         int finished_by_eos);

/* BeamHypotheses.is_done: no live beam can still enter the list. best_sum_logprobs is the best
 * candidate total of the step, cur_len the length of input_ids before appending plus one. */
int beam_hypotheses_is_done(const beam_hypotheses *h, double best_sum_logprobs, int cur_len);

/* The winner as `finalize` picks it: the highest score, the latest-added of equals
 * (Python's stable sort followed by pop()). Requires n >= 1. */
const hypothesis *beam_hypotheses_best(const beam_hypotheses *h);

#endif
