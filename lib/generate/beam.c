#include "generate/beam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

r2gen_status beam_hypotheses_init(beam_hypotheses *h, int num_beams, int max_len,
                                  double length_penalty, error *err)
{
    *h = (beam_hypotheses){.num_beams = num_beams, .max_len = max_len,
                           .length_penalty = length_penalty, .worst_score = 1e9};
    h->list = calloc((size_t)num_beams + 1, sizeof(*h->list));
    h->storage = malloc(((size_t)num_beams + 1) * (size_t)max_len * sizeof(*h->storage));
    if (!h->list || !h->storage) {
        beam_hypotheses_free(h);
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "beam hypotheses: out of memory");
    }
    for (int i = 0; i <= num_beams; i++) h->list[i].ids = h->storage + (size_t)i * max_len;
    return R2GEN_OK;
}

void beam_hypotheses_free(beam_hypotheses *h)
{
    free(h->list);
    free(h->storage);
    h->list = NULL;
    h->storage = NULL;
}

/* Python's `del beams[i]`: later entries move up; the freed slot goes to the unused tail. */
static void remove_entry(beam_hypotheses *h, int i)
{
    int32_t *freed = h->list[i].ids;
    memmove(h->list + i, h->list + i + 1, (size_t)(h->n - i - 1) * sizeof(*h->list));
    h->n--;
    h->list[h->n].ids = freed;
}

/* Index of the lowest score, the earliest of equals (sorted() of (score, index) pairs). */
static int lowest_entry(const beam_hypotheses *h, int skip)
{
    int lowest = -1;
    for (int i = 0; i < h->n; i++) {
        if (i == skip) continue;
        if (lowest < 0 || h->list[i].score < h->list[lowest].score) lowest = i;
    }
    return lowest;
}

void beam_hypotheses_add(beam_hypotheses *h, const int32_t *ids, int len, double sum_logprobs,
                         int finished_by_eos)
{
    double score = sum_logprobs / pow((double)len, h->length_penalty);
    if (h->n >= h->num_beams && !(score > h->worst_score)) return;
    hypothesis *added = &h->list[h->n++];
    memcpy(added->ids, ids, (size_t)len * sizeof(*ids));
    added->len = len;
    added->score = score;
    added->finished_by_eos = finished_by_eos;
    if (h->n > h->num_beams) {
        int dropped = lowest_entry(h, -1);
        int next = lowest_entry(h, dropped);
        h->worst_score = h->list[next].score;
        remove_entry(h, dropped);
    } else if (score < h->worst_score) {
        h->worst_score = score;
    }
}

int beam_hypotheses_is_done(const beam_hypotheses *h, double best_sum_logprobs, int cur_len)
{
    if (h->n < h->num_beams) return 0;
    return h->worst_score >= best_sum_logprobs / pow((double)cur_len, h->length_penalty);
}

const hypothesis *beam_hypotheses_best(const beam_hypotheses *h)
{
    int best = 0;
    for (int i = 1; i < h->n; i++)
        if (h->list[i].score >= h->list[best].score) best = i;
    return &h->list[best];
}
