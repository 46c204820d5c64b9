/* HF transformers 4.30.2 generate(inputs_embeds=...), batch 1, decoder-only model.
 *
 * input_ids starts as [bos] (HF's _maybe_initialize_input_ids_for_generation): that id is never
 * fed to the model, whose first forward takes the prompt embeddings, but it counts everywhere
 * else: it leads the returned sequence, the repetition penalty sees it, max_length is
 * max_new_tokens + 1 and every beam hypothesis length includes it. All buffers are sized once
 * from num_beams, the vocabulary and max_new_tokens; the steps allocate nothing. */
#include "generate/generate.h"

#include <stdlib.h>
#include <string.h>

#include "generate/beam.h"
#include "generate/logits.h"
#include "generate/sample.h"
#include "ops/ops.h"

static r2gen_status check_config(const decoder *d, int n_positions, const generate_config *cfg,
                                 error *err)
{
    if (n_positions < 1)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "generate: no prompt positions");
    if (cfg->num_beams < 1)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "generate: num_beams %d < 1",
                         cfg->num_beams);
    if (cfg->max_new_tokens < 1 || cfg->min_new_tokens < 0)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                         "generate: need max_new_tokens >= 1 and min_new_tokens >= 0 (got %d, %d)",
                         cfg->max_new_tokens, cfg->min_new_tokens);
    if (!(cfg->repetition_penalty > 0.0f))
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                         "generate: repetition_penalty must be > 0");
    int32_t ids[3] = {cfg->bos_id, cfg->eos_id, cfg->pad_id};
    for (int i = 0; i < 3; i++)
        if (ids[i] < 0 || ids[i] >= d->n_vocab)
            return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                             "generate: special token id %d outside the vocabulary of %d", ids[i],
                             d->n_vocab);
    if (cfg->do_sample) {
        if (cfg->num_beams != 1)
            return error_set(err, R2GEN_ERR_UNSUPPORTED,
                             "generate: sampling with beams (beam_sample) is not supported");
        if (!(cfg->temperature > 0.0f) || cfg->top_k < 0 ||
            !(cfg->top_p > 0.0f && cfg->top_p <= 1.0f))
            return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                             "generate: need temperature > 0, top_k >= 0, 0 < top_p <= 1");
    }
    return R2GEN_OK;
}

/* The logits processors of one row, given that row's input_ids. */
static void process_scores(float *scores, const int32_t *ids, int len, const generate_config *cfg,
                           float *gathered)
{
    if (cfg->repetition_penalty != 1.0f)
        repetition_penalty(scores, ids, len, cfg->repetition_penalty, gathered);
    mask_eos_before_min(scores, len - 1, cfg->min_new_tokens, cfg->eos_id);
}

static int is_eos(const generate_config *cfg, int32_t token)
{
    return !cfg->eos_disabled && token == cfg->eos_id;
}

static r2gen_status cancelled(error *err)
{
    return error_set(err, R2GEN_ERR_CANCELLED, "generate: cancelled by a callback");
}

static r2gen_status out_of_memory(error *err)
{
    return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "generate: out of memory");
}

static r2gen_status nothing_to_choose(error *err)
{
    /* Input embeddings are checked to be finite, so this comes from the weights. */
    return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                     "generate: the model's scores are all NaN or -inf (non-finite weights?)");
}

/* The returned sequence: ids, then eos_id unless it is negative. */
static r2gen_status set_result(generate_result *out, const int32_t *ids, int len, int32_t eos_id,
                               double score, int stopped_by_eos, error *err)
{
    out->sequence = malloc(((size_t)len + 1) * sizeof(*out->sequence));
    if (!out->sequence) return out_of_memory(err);
    memcpy(out->sequence, ids, (size_t)len * sizeof(*ids));
    out->n = (size_t)len;
    if (eos_id >= 0) out->sequence[out->n++] = eos_id;
    out->score = score;
    out->stopped_by_eos = stopped_by_eos;
    return R2GEN_OK;
}

/* HF `greedy_search` and, with do_sample, `sample`: one row, argmax or a draw per step. */
static r2gen_status search_one_row(const decoder *d, const compute *cpu, const float *prompt,
                                   int n_positions, const generate_config *cfg,
                                   generate_result *out, error *err)
{
    int max_len = cfg->max_new_tokens + 1;
    float *logits = malloc((size_t)d->n_vocab * sizeof(*logits));
    int32_t *ids = malloc((size_t)max_len * sizeof(*ids));
    float *gathered = malloc((size_t)max_len * sizeof(*gathered));
    sampler sampling = {0};
    r2gen_status status = R2GEN_OK;
    if (!logits || !ids || !gathered)
        status = out_of_memory(err);
    else if (cfg->do_sample)
        status = sampler_init(&sampling, cfg->temperature, cfg->top_k, cfg->top_p, cfg->seed,
                              d->n_vocab, err);
    if (status == R2GEN_OK) status = d->prefill(d->self, cpu, prompt, n_positions, logits, err);

    int len = 1;
    int stopped_by_eos = 0;
    if (status == R2GEN_OK) ids[0] = cfg->bos_id;
    while (status == R2GEN_OK) {
        process_scores(logits, ids, len, cfg, gathered);
        int32_t token;
        if (cfg->do_sample) {
            token = sampler_pick(&sampling, logits, d->n_vocab);
        } else {
            candidate best;
            token = top_candidates(logits, d->n_vocab, 1, &best) ? (int32_t)best.index : -1;
        }
        if (token < 0) {
            status = nothing_to_choose(err);
            break;
        }
        ids[len++] = token;
        stopped_by_eos = is_eos(cfg, token);
        if ((cfg->on_token && cfg->on_token(cfg->user, token)) ||
            (cfg->progress && cfg->progress(cfg->user, len - 1, cfg->max_new_tokens))) {
            status = cancelled(err);
            break;
        }
        if (stopped_by_eos || len == max_len) break;
        int32_t parent = 0;
        status = d->decode(d->self, cpu, &token, &parent, 1, logits, err);
    }
    /* The eos, when generated, is already part of ids. */
    if (status == R2GEN_OK) status = set_result(out, ids, len, -1, 0.0, stopped_by_eos, err);
    sampler_free(&sampling);
    free(gathered);
    free(ids);
    free(logits);
    return status;
}

/* Work buffers of a beam search with K beams. */
typedef struct beam_search {
    int num_beams, n_vocab, max_len;
    float *scores;         /* K x n_vocab: logits, then processed log-probs + beam score */
    float *beam_scores;    /* K: cumulative score of each live beam */
    int32_t *ids;          /* K x max_len: input_ids of each live beam */
    int32_t *next_ids;     /* K x max_len: the same after this step's reordering */
    int32_t *next_tokens;  /* K */
    int32_t *parents;      /* K: the row each new beam continues */
    candidate *candidates; /* 2K */
    float *gathered;       /* max_len: repetition-penalty scratch */
    beam_hypotheses hyps;
} beam_search;

static void beam_search_free(beam_search *b)
{
    free(b->scores);
    free(b->beam_scores);
    free(b->ids);
    free(b->next_ids);
    free(b->next_tokens);
    free(b->parents);
    free(b->candidates);
    free(b->gathered);
    beam_hypotheses_free(&b->hyps);
}

static r2gen_status beam_search_init(beam_search *b, const decoder *d, const generate_config *cfg,
                                     error *err)
{
    size_t k = (size_t)cfg->num_beams;
    *b = (beam_search){.num_beams = cfg->num_beams, .n_vocab = d->n_vocab,
                       .max_len = cfg->max_new_tokens + 1};
    b->scores = malloc(k * (size_t)d->n_vocab * sizeof(*b->scores));
    b->beam_scores = malloc(k * sizeof(*b->beam_scores));
    b->ids = malloc(k * (size_t)b->max_len * sizeof(*b->ids));
    b->next_ids = malloc(k * (size_t)b->max_len * sizeof(*b->next_ids));
    b->next_tokens = malloc(k * sizeof(*b->next_tokens));
    b->parents = malloc(k * sizeof(*b->parents));
    b->candidates = malloc(2 * k * sizeof(*b->candidates));
    b->gathered = malloc((size_t)b->max_len * sizeof(*b->gathered));
    if (!b->scores || !b->beam_scores || !b->ids || !b->next_ids || !b->next_tokens ||
        !b->parents || !b->candidates || !b->gathered) {
        beam_search_free(b);
        return out_of_memory(err);
    }
    r2gen_status status =
        beam_hypotheses_init(&b->hyps, cfg->num_beams, b->max_len, cfg->length_penalty, err);
    if (status != R2GEN_OK) beam_search_free(b);
    return status;
}

/* Scores of one step: log_softmax, the processors on the log-probs (so the repetition penalty
 * multiplies log-probabilities), plus each row's beam score (float32, as torch adds them). Then
 * the top 2K of the K x n_vocab totals. Returns how many candidates were found (2K unless the
 * scores hold NaNs). */
static int rank_candidates(beam_search *b, int len, const generate_config *cfg)
{
    for (int r = 0; r < b->num_beams; r++) {
        float *row = b->scores + (size_t)r * b->n_vocab;
        log_softmax(row, b->n_vocab);
        process_scores(row, b->ids + (size_t)r * b->max_len, len, cfg, b->gathered);
        for (int i = 0; i < b->n_vocab; i++) row[i] += b->beam_scores[r];
    }
    return top_candidates(b->scores, (int64_t)b->num_beams * b->n_vocab, 2 * b->num_beams,
                          b->candidates);
}

/* BeamSearchScorer.process: walk the candidates best first; an eos among the first K finishes
 * a hypothesis (its row's ids without the eos), an eos further down is skipped, any other token
 * becomes the next new beam, until K new beams are collected. Then reorder the rows' ids. */
static void process_candidates(beam_search *b, int len, const generate_config *cfg)
{
    int n_new = 0;
    /* Each row has one eos candidate, so at most K of the 2K are eos: K new beams are found. */
    for (int rank = 0; n_new < b->num_beams; rank++) {
        const candidate *c = &b->candidates[rank];
        int row = (int)(c->index / b->n_vocab);
        int32_t token = (int32_t)(c->index % b->n_vocab);
        if (is_eos(cfg, token)) {
            if (rank < b->num_beams)
                beam_hypotheses_add(&b->hyps, b->ids + (size_t)row * b->max_len, len, c->score,
                                    1);
            continue;
        }
        b->next_tokens[n_new] = token;
        b->parents[n_new] = row;
        b->beam_scores[n_new] = c->score;
        n_new++;
    }
    for (int r = 0; r < b->num_beams; r++) {
        int32_t *next = b->next_ids + (size_t)r * b->max_len;
        memcpy(next, b->ids + (size_t)b->parents[r] * b->max_len, (size_t)len * sizeof(*next));
        next[len] = b->next_tokens[r];
    }
    int32_t *swap = b->ids;
    b->ids = b->next_ids;
    b->next_ids = swap;
}

static r2gen_status run_beam_search(beam_search *b, const decoder *d, const compute *cpu,
                                    const float *prompt, int n_positions,
                                    const generate_config *cfg, error *err)
{
    /* Every row starts as the prompt; HF's beam scores [0, -1e9, ...] let only row 0 expand
     * at step 0 while keeping the other rows' candidates in the ranking. */
    r2gen_status status = d->prefill(d->self, cpu, prompt, n_positions, b->scores, err);
    if (status != R2GEN_OK) return status;
    for (int r = 0; r < b->num_beams; r++) {
        b->ids[(size_t)r * b->max_len] = cfg->bos_id;
        b->beam_scores[r] = r == 0 ? 0.0f : -1e9f;
        if (r > 0)
            memcpy(b->scores + (size_t)r * b->n_vocab, b->scores,
                   (size_t)b->n_vocab * sizeof(*b->scores));
    }
    int len = 1;
    for (;;) {
        if (rank_candidates(b, len, cfg) < 2 * b->num_beams) return nothing_to_choose(err);
        process_candidates(b, len, cfg);
        if (cfg->on_beams)
            cfg->on_beams(cfg->user, len - 1, b->next_tokens, b->parents, b->beam_scores,
                          b->num_beams);
        /* is_done sees one more than the length `add` used: len(input_ids) + 1. */
        int done = beam_hypotheses_is_done(&b->hyps, b->candidates[0].score, len + 1);
        len++;
        if (cfg->progress && cfg->progress(cfg->user, len - 1, cfg->max_new_tokens))
            return cancelled(err);
        if (done) return R2GEN_OK;
        if (len == b->max_len) break;
        status = d->decode(d->self, cpu, b->next_tokens, b->parents, b->num_beams, b->scores,
                           err);
        if (status != R2GEN_OK) return status;
    }
    /* finalize: the live beams join the hypotheses (only when is_done did not stop the search). */
    for (int r = 0; r < b->num_beams; r++)
        beam_hypotheses_add(&b->hyps, b->ids + (size_t)r * b->max_len, len, b->beam_scores[r], 0);
    return R2GEN_OK;
}

/* HF `beam_search` with BeamSearchScorer (early_stopping False, one returned sequence). */
static r2gen_status search_beams(const decoder *d, const compute *cpu, const float *prompt,
                                 int n_positions, const generate_config *cfg,
                                 generate_result *out, error *err)
{
    beam_search b;
    r2gen_status status = beam_search_init(&b, d, cfg, err);
    if (status != R2GEN_OK) return status;
    status = run_beam_search(&b, d, cpu, prompt, n_positions, cfg, err);
    if (status == R2GEN_OK) {
        /* finalize appends one eos to a winner shorter than max_length, which only a
         * hypothesis finished by eos can be. */
        const hypothesis *best = beam_hypotheses_best(&b.hyps);
        int short_winner = best->len < b.max_len;
        status = set_result(out, best->ids, best->len, short_winner ? cfg->eos_id : -1,
                            best->score, short_winner, err);
    }
    beam_search_free(&b);
    return status;
}

r2gen_status generate_run(const decoder *d, const compute *cpu, const float *prompt_embeddings,
                          int n_positions, const generate_config *cfg, generate_result *out,
                          error *err)
{
    *out = (generate_result){0};
    r2gen_status status = check_config(d, n_positions, cfg, err);
    if (status != R2GEN_OK) return status;
    if (cfg->num_beams > 1)
        return search_beams(d, cpu, prompt_embeddings, n_positions, cfg, out, err);
    return search_one_row(d, cpu, prompt_embeddings, n_positions, cfg, out, err);
}

void generate_result_free(generate_result *r)
{
    free(r->sequence);
    *r = (generate_result){0};
}
