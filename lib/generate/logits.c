#include "generate/logits.h"

#include <math.h>

void repetition_penalty(float *scores, const int32_t *ids, int n_ids, float penalty,
                        float *gathered)
{
    for (int i = 0; i < n_ids; i++) {
        float s = scores[ids[i]];
        gathered[i] = s < 0 ? s * penalty : s / penalty;
    }
    for (int i = 0; i < n_ids; i++) scores[ids[i]] = gathered[i];
}

void mask_eos_before_min(float *scores, int n_generated, int min_new_tokens, int32_t eos_id)
{
    if (n_generated < min_new_tokens) scores[eos_id] = -INFINITY;
}

int top_candidates(const float *scores, int64_t n, int k, candidate *best)
{
    int n_best = 0;
    for (int64_t i = 0; i < n; i++) {
        float s = scores[i];
        /* Strictly better than the current k-th: an equal later index never displaces an
         * earlier one, which keeps ties in index order. */
        if (n_best == k && !(s > best[k - 1].score)) continue;
        if (isnan(s)) continue;
        int slot = n_best < k ? n_best++ : k - 1;
        while (slot > 0 && s > best[slot - 1].score) {
            best[slot] = best[slot - 1];
            slot--;
        }
        best[slot] = (candidate){s, i};
    }
    return n_best;
}
