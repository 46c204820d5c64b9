/* Generation decisions on scripted models: each script sets the probabilities of every step by
 * hand, so the expected sequences below were worked out on paper from HF 4.30.2's rules
 * (comments give the reasoning). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fake_decoder.h"
#include "generate/beam.h"
#include "generate/generate.h"
#include "generate/logits.h"
#include "generate/sample.h"

static const compute cpu = {.n_threads = 1};
static const float no_prompt[1];

/* ---- scripts ---- */

static void set_probabilities(float *logits, const float *p, int n_vocab)
{
    for (int i = 0; i < n_vocab; i++) logits[i] = logf(p[i]);
}

static void flat_script(const int32_t *h, int n, float *logits, int n_vocab, void *user)
{
    for (int i = 0; i < n_vocab; i++) logits[i] = *(const float *)user;
}

/* Fixed logits whatever the history. */
static void constant_script(const int32_t *h, int n, float *logits, int n_vocab, void *user)
{
    memcpy(logits, user, (size_t)n_vocab * sizeof(*logits));
}

/* Beam scenario S (vocab 4, eos 2): eos hypotheses at every step, one dropped, one rejected. */
static void script_s(const int32_t *h, int n, float *logits, int n_vocab, void *user)
{
    static const float start[4] = {0.5f, 0.1f, 0.3f, 0.1f};
    static const float after_0[4] = {0.1f, 0.1f, 0.7f, 0.1f};
    static const float after_00[4] = {0.2f, 0.05f, 0.7f, 0.05f};
    static const float after_01[4] = {0.05f, 0.05f, 0.6f, 0.3f};
    static const float uniform[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    const float *p = uniform;
    if (n == 0) p = start;
    if (n == 1 && h[0] == 0) p = after_0;
    if (n == 2 && h[0] == 0) p = h[1] == 0 ? after_00 : after_01;
    set_probabilities(logits, p, n_vocab);
}

/* Beam scenario T (vocab 4, eos 2): at step 1 an eos sits at rank 2 >= K and must be skipped. */
static void script_t(const int32_t *h, int n, float *logits, int n_vocab, void *user)
{
    static const float start[4] = {0.4f, 0.05f, 0.05f, 0.5f};
    static const float after_3[4] = {0.05f, 0.05f, 0.85f, 0.05f};
    static const float after_0[4] = {0.05f, 0.05f, 0.3f, 0.6f};
    static const float uniform[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    const float *p = uniform;
    if (n == 0) p = start;
    if (n == 1) p = h[0] == 3 ? after_3 : after_0;
    set_probabilities(logits, p, n_vocab);
}

/* Beam scenario U (vocab 4, eos 2): is_done becomes true with worst == best exactly. */
static void script_u(const int32_t *h, int n, float *logits, int n_vocab, void *user)
{
    static const float start[4] = {0.3f, 0.05f, 0.6f, 0.05f};
    static const float after_0[4] = {0.1f, 0.1f, 0.7f, 0.1f};
    static const float uniform[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    const float *p = uniform;
    if (n == 0) p = start;
    if (n == 1 && h[0] == 0) p = after_0;
    set_probabilities(logits, p, n_vocab);
}

/* A pseudo-random model: logits in [-4, 4) hashed from the history; eos (2) nearly impossible. */
static void hashed_script(const int32_t *h, int n, float *logits, int n_vocab, void *user)
{
    uint64_t state = 0x1234567u;
    for (int i = 0; i < n; i++) state = state * 6364136223846793005ull + (uint64_t)h[i] + 1;
    for (int i = 0; i < n_vocab; i++) {
        uint64_t x = (state + (uint64_t)i) * 0x9e3779b97f4a7c15ull;
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 32;
        logits[i] = (float)((double)(x >> 11) * 0x1.0p-53 * 8.0 - 4.0);
    }
    logits[2] = -20.0f;
}

/* ---- helpers ---- */

static generate_config base_config(int num_beams, int max_new_tokens)
{
    return (generate_config){.num_beams = num_beams, .max_new_tokens = max_new_tokens,
                             .repetition_penalty = 1.0f, .length_penalty = 1.0f,
                             .temperature = 1.0f, .top_p = 1.0f, .bos_id = 1, .eos_id = 2};
}

/* Run cfg on a fresh fake decoder; *decodes gets the decode calls. */
static r2gen_status run(fake_script script, void *user, int n_vocab, const generate_config *cfg,
                        generate_result *out, int *decodes)
{
    fake_decoder f;
    if (fake_decoder_init(&f, n_vocab, cfg->num_beams, cfg->max_new_tokens, script, user) != 0)
        return R2GEN_ERR_OUT_OF_MEMORY;
    decoder d = fake_decoder_interface(&f);
    error err = {0};
    r2gen_status status = generate_run(&d, &cpu, no_prompt, 1, cfg, out, &err);
    CHECK(f.misuse == 0, "generate misused the decoder %d times", f.misuse);
    CHECK(f.n_prefill == (status == R2GEN_OK), "%d prefills, status %d", f.n_prefill, status);
    if (decodes) *decodes = f.n_decode;
    fake_decoder_free(&f);
    return status;
}

static int same_sequence(const generate_result *r, const int32_t *expected, size_t n)
{
    if (r->n != n) return 0;
    return memcmp(r->sequence, expected, n * sizeof(*expected)) == 0;
}

static void print_sequence(const char *what, const generate_result *r)
{
    fprintf(stderr, "%s:", what);
    for (size_t i = 0; i < r->n; i++) fprintf(stderr, " %d", r->sequence[i]);
    fputc('\n', stderr);
}

/* Runs cfg and checks the sequence, the eos flag and the number of decode calls. */
static void expect(const char *name, fake_script script, void *user, int n_vocab,
                   const generate_config *cfg, const int32_t *expected, size_t n,
                   int stopped_by_eos, int decodes)
{
    generate_result r;
    int n_decode = -1;
    r2gen_status status = run(script, user, n_vocab, cfg, &r, &n_decode);
    CHECK(status == R2GEN_OK, "%s: status %d", name, status);
    if (status != R2GEN_OK) return;
    int same = same_sequence(&r, expected, n);
    CHECK(same, "%s: wrong sequence", name);
    if (!same) print_sequence(name, &r);
    CHECK(r.stopped_by_eos == stopped_by_eos, "%s: stopped_by_eos %d", name, r.stopped_by_eos);
    CHECK(n_decode == decodes, "%s: %d decode calls, expected %d", name, n_decode, decodes);
    generate_result_free(&r);
}

#define EXPECT(name, script, user, n_vocab, cfg, stopped, decodes, ...)                            \
    do {                                                                                           \
        const int32_t expected_[] = {__VA_ARGS__};                                                 \
        expect(name, script, user, n_vocab, cfg, expected_,                                        \
               sizeof(expected_) / sizeof(expected_[0]), stopped, decodes);                        \
    } while (0)

/* ---- greedy ---- */

static void test_greedy(void)
{
    /* All six logits equal, eos 5: ties go to the lowest id; the penalty (2) halves every id in
     * input_ids, the never-fed leading 1 included, so the picks run 0, 2, 3, 4, then eos. */
    float five = 5.0f;
    generate_config cfg = base_config(1, 30);
    cfg.eos_id = 5;
    cfg.repetition_penalty = 2.0f;
    EXPECT("greedy ties + penalty", flat_script, &five, 6, &cfg, 1, 4, 1, 0, 2, 3, 4, 5);

    /* min_new_tokens 5: eos is masked at the 5th pick, which takes 0 (all others at 2.5). */
    cfg.min_new_tokens = 5;
    EXPECT("greedy min_new_tokens", flat_script, &five, 6, &cfg, 1, 5, 1, 0, 2, 3, 4, 0, 5);

    /* eos_disabled: eos is just a token; the run goes on to max_new_tokens. */
    cfg.min_new_tokens = 0;
    cfg.eos_disabled = 1;
    cfg.max_new_tokens = 8;
    EXPECT("greedy eos disabled", flat_script, &five, 6, &cfg, 0, 7, 1, 0, 2, 3, 4, 5, 0, 0, 0);

    /* No penalty: 0 forever; max_new_tokens 1 needs no decode step. */
    cfg = base_config(1, 3);
    cfg.eos_id = 5;
    EXPECT("greedy no penalty", flat_script, &five, 6, &cfg, 0, 2, 1, 0, 0, 0);
    cfg.max_new_tokens = 1;
    EXPECT("greedy max 1", flat_script, &five, 6, &cfg, 0, 0, 1, 0);

    /* Each distinct id is penalised once: 0 (3.0 -> 1.5) still beats 2 (1.4) on later steps; a
     * penalty per occurrence would make it 0.75 and pick 2. */
    float positive[6] = {3.0f, -0.1f, 1.4f, -0.5f, 1.6f, -9.0f};
    cfg = base_config(1, 4);
    cfg.eos_id = 5;
    cfg.repetition_penalty = 2.0f;
    EXPECT("greedy penalty once", constant_script, positive, 6, &cfg, 0, 3, 1, 0, 4, 0, 0);

    /* Negative scores are multiplied: 0 (-1 -> -2) loses to 2 (-1.5), then 3 (-1.8), then 0. */
    float negative[6] = {-1.0f, -3.0f, -1.5f, -1.8f, -5.0f, -9.0f};
    EXPECT("greedy penalty negative", constant_script, negative, 6, &cfg, 0, 3, 1, 0, 2, 3, 0);
}

/* ---- beam search ---- */

static void check_score(const char *name, fake_script script, const generate_config *cfg,
                        double expected)
{
    generate_result r;
    if (run(script, NULL, 4, cfg, &r, NULL) != R2GEN_OK) return;
    CHECK(fabs(r.score - expected) < 1e-5, "%s: score %.7f, expected %.7f", name, r.score,
          expected);
    generate_result_free(&r);
}

static void test_beam(void)
{
    /* S, K = 2, length_penalty 1, max 3 new tokens.
     * step 0: candidates 0 (ln .5), eos (ln .3), then 1 and 3 tied (ln .1): 1 first.
     *         beams [1,0] [1,1]; hypothesis [1] = ln .3 / 1.
     * step 1: row [1,0]: eos first (ln .5 + ln .7) -> hypothesis [1,0], score total / 2;
     *         beams [1,0,0] and [1,0,1] (tied, lower id first).
     * step 2: eos of [1,0,0] at rank 0 -> kept, [1] dropped; eos of [1,0,1] at rank 1 ->
     *         rejected (not above the worst); beams [1,0,1,3] [1,0,0,0].
     * finalize: [1,0,1,3] replaces [1,0,0]; the winner is [1,0] + eos. */
    generate_config cfg = base_config(2, 3);
    EXPECT("beam S", script_s, NULL, 4, &cfg, 1, 2, 1, 0, 2);
    check_score("beam S", script_s, &cfg, (log(0.5) + log(0.7)) / 2.0);

    /* max_new_tokens 1: the step-0 beams are final; [1,0] (ln .5 / 2) beats [1] (ln .3), and a
     * live beam at max_length gets no eos. */
    cfg.max_new_tokens = 1;
    EXPECT("beam max 1", script_s, NULL, 4, &cfg, 0, 0, 1, 0);
    check_score("beam max 1", script_s, &cfg, log(0.5) / 2.0);

    /* T, length_penalty -3: step 1 ranks eos of [1,3] (added), token 3 of [1,0], eos of [1,0]
     * (rank 2 >= K: skipped), token 0 of [1,3]. Had that eos been added, is_done would hold
     * with two hypotheses and the search would stop after one decode step; skipped, there is
     * one hypothesis and the search runs to max_length (two decode steps). */
    cfg = base_config(2, 3);
    cfg.length_penalty = -3.0f;
    EXPECT("beam eos rank >= K", script_t, NULL, 4, &cfg, 1, 2, 1, 3, 2);

    /* U, length_penalty 0 (score = sum): step 0 eos -> [1] (ln .6); step 1 eos of [1,0] ->
     * second hypothesis, worst = its total = the best total of the step, so is_done (>=) stops
     * the search after one decode; the live beams are not added. */
    cfg = base_config(2, 10);
    cfg.length_penalty = 0.0f;
    EXPECT("beam is_done", script_u, NULL, 4, &cfg, 1, 1, 1, 2);
    check_score("beam is_done", script_u, &cfg, log(0.6));

    /* U, length_penalty 1: after step 1 the hypotheses are [1] (ln .6) and [1,0] (T / 2, the
     * worst, T = ln .3 + ln .7). is_done compares with T / cur_len where cur_len is one more
     * than the hypothesis length: T / 3 > T / 2, not done (with T / 2 it would stop here).
     * Step 2 (uniform) has best total ln .3 + ln .1 + ln .25, / 4 below T / 2: done after two
     * decodes. */
    cfg.length_penalty = 1.0f;
    EXPECT("beam is_done cur_len", script_u, NULL, 4, &cfg, 1, 2, 1, 2);

    /* min_new_tokens 2 masks the eos of steps 0 and 1: the beams are [1,0,0] and [1,0,1]
     * (tied) as in S. Step 2 adds both eos hypotheses (rank 0 and 1, fewer than K stored);
     * finalize: [1,0,1,3] (-4.1997 / 4) replaces the worst, [1,0,0,0] (-4.6052 / 4) does not
     * beat [1,0,0] (-3.3524 / 3); the winner is the live beam, without eos. */
    cfg = base_config(2, 3);
    cfg.min_new_tokens = 2;
    EXPECT("beam min_new_tokens", script_s, NULL, 4, &cfg, 0, 2, 1, 0, 1, 3);
}

/* Beam bookkeeping on a pseudo-random model: the winner's fed tokens must be the history the
 * decoder built through parent_rows, and repeated runs agree. */
static void test_beam_reordering(void)
{
    generate_config cfg = base_config(3, 12);
    cfg.repetition_penalty = 1.3f;
    cfg.min_new_tokens = 3;
    fake_decoder f;
    if (fake_decoder_init(&f, 50, 3, 12, hashed_script, NULL) != 0) return;
    decoder d = fake_decoder_interface(&f);
    error err;
    generate_result first, again;
    CHECK(generate_run(&d, &cpu, no_prompt, 1, &cfg, &first, &err) == R2GEN_OK, "%s",
          err.message);
    CHECK(first.n == 13 && first.sequence[0] == 1 && !first.stopped_by_eos, "n %zu", first.n);
    int found = 0;
    for (int r = 0; r < 3 && first.n == 13; r++)
        found |= memcmp(f.history + (size_t)r * f.max_steps, first.sequence + 1,
                        11 * sizeof(int32_t)) == 0;
    CHECK(found, "the winner is none of the decoder's rows");
    CHECK(generate_run(&d, &cpu, no_prompt, 1, &cfg, &again, &err) == R2GEN_OK, "%s",
          err.message);
    CHECK(same_sequence(&again, first.sequence, first.n) && again.score == first.score,
          "a second run on the same decoder differs");
    CHECK(f.misuse == 0 && f.n_prefill == 2 && f.n_decode == 22, "misuse %d, %d decodes",
          f.misuse, f.n_decode);
    generate_result_free(&first);
    generate_result_free(&again);
    fake_decoder_free(&f);
}

/* ---- cancel ---- */

typedef struct counter {
    int calls, cancel_at, last_step;
} counter;

static int count_tokens(void *user, int32_t id)
{
    counter *c = user;
    return ++c->calls == c->cancel_at;
}

static int count_steps(void *user, int step, int max_steps)
{
    counter *c = user;
    if (step != c->last_step + 1 || max_steps != 12) c->cancel_at = -1000; /* out of order */
    c->last_step = step;
    return ++c->calls == c->cancel_at;
}

static void test_cancel(void)
{
    fake_decoder f;
    if (fake_decoder_init(&f, 50, 3, 12, hashed_script, NULL) != 0) return;
    decoder d = fake_decoder_interface(&f);
    error err;
    for (int beams = 1; beams <= 3; beams += 2) {
        counter c = {.cancel_at = 4};
        generate_config cfg = base_config(beams, 12);
        cfg.user = &c;
        if (beams == 1)
            cfg.on_token = count_tokens;
        else
            cfg.progress = count_steps;
        generate_result r;
        r2gen_status status = generate_run(&d, &cpu, no_prompt, 1, &cfg, &r, &err);
        CHECK(status == R2GEN_ERR_CANCELLED && r.sequence == NULL && r.n == 0 && c.calls == 4,
              "beams %d: status %d after %d calls", beams, status, c.calls);
        /* The decoder is reusable: the same run without cancel completes. */
        c = (counter){.cancel_at = 0};
        status = generate_run(&d, &cpu, no_prompt, 1, &cfg, &r, &err);
        CHECK(status == R2GEN_OK && r.n == 13 && c.calls == 12, "beams %d: rerun %d, %d calls",
              beams, status, c.calls);
        if (status == R2GEN_OK) generate_result_free(&r);
    }
    CHECK(f.misuse == 0, "misuse %d", f.misuse);
    fake_decoder_free(&f);
}

/* ---- argument checks ---- */

static void test_invalid(void)
{
    generate_config bad[6];
    for (int i = 0; i < 6; i++) bad[i] = base_config(1, 5);
    bad[0].num_beams = 0;
    bad[1].max_new_tokens = 0;
    bad[2].repetition_penalty = 0.0f;
    bad[3].eos_id = 50;
    bad[4].do_sample = 1, bad[4].temperature = 0.0f;
    bad[5].do_sample = 1, bad[5].top_p = 0.0f;
    for (int i = 0; i < 6; i++) {
        generate_result r;
        CHECK(run(hashed_script, NULL, 50, &bad[i], &r, NULL) == R2GEN_ERR_INVALID_ARGUMENT &&
                  r.sequence == NULL,
              "bad config %d accepted", i);
    }
    generate_config beam_sample = base_config(3, 5);
    beam_sample.do_sample = 1;
    generate_result r;
    CHECK(run(hashed_script, NULL, 50, &beam_sample, &r, NULL) == R2GEN_ERR_UNSUPPORTED,
          "beam sampling accepted");
}

/* ---- selection, hypotheses, sampling ---- */

static int compare_reference(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static void test_top_candidates(void)
{
    enum { N = 3000, K = 8 };
    static float scores[N];
    static candidate all[N];
    rng r;
    rng_seed(&r, 7);
    for (int trial = 0; trial < 20; trial++) {
        /* Few distinct values, so ties cross the k-th place. */
        for (int i = 0; i < N; i++) {
            scores[i] = (float)(rng_next(&r) % 16) - 8.0f;
            all[i] = (candidate){scores[i], i};
        }
        qsort(all, N, sizeof(*all), compare_reference);
        candidate best[K];
        int n = top_candidates(scores, N, K, best);
        int same = n == K;
        for (int i = 0; i < K && same; i++)
            same = best[i].index == all[i].index && best[i].score == all[i].score;
        CHECK(same, "trial %d: top %d differ from a sort", trial, K);
    }
    float with_nan[4] = {NAN, 1.0f, NAN, 2.0f};
    candidate best[3];
    CHECK(top_candidates(with_nan, 4, 3, best) == 2 && best[0].index == 3 && best[1].index == 1,
          "NaN handling");
}

static void test_hypotheses(void)
{
    beam_hypotheses h;
    error err;
    if (beam_hypotheses_init(&h, 2, 4, 1.0, &err) != R2GEN_OK) return;
    int32_t a[1] = {10}, b[1] = {20}, c[1] = {30}, d[2] = {40, 41};
    beam_hypotheses_add(&h, a, 1, -1.0, 1);
    CHECK(!beam_hypotheses_is_done(&h, -100.0, 2), "done with one hypothesis");
    beam_hypotheses_add(&h, b, 1, -2.0, 1);
    CHECK(h.n == 2 && h.worst_score == -2.0, "worst %g", h.worst_score);
    beam_hypotheses_add(&h, b, 1, -2.0, 1); /* equal to the worst: not kept */
    CHECK(h.n == 2, "an equal score was kept");
    beam_hypotheses_add(&h, c, 1, -1.0, 1); /* drops -2; two equal -1 remain */
    CHECK(h.n == 2 && h.worst_score == -1.0 && h.list[0].ids[0] == 10 && h.list[1].ids[0] == 30,
          "drop: n %d worst %g", h.n, h.worst_score);
    CHECK(beam_hypotheses_best(&h)->ids[0] == 30, "the latest of equal scores must win");
    /* is_done: worst (-1) >= best / cur_len ** 1 */
    CHECK(beam_hypotheses_is_done(&h, -2.0, 2) && !beam_hypotheses_is_done(&h, -1.9, 2),
          "is_done threshold");
    beam_hypotheses_add(&h, d, 2, -1.0, 0); /* -0.5: the new best */
    CHECK(beam_hypotheses_best(&h)->len == 2 && beam_hypotheses_best(&h)->ids[1] == 41 &&
              h.worst_score == -1.0,
          "add after a drop");
    beam_hypotheses_free(&h);
}

/* Empirical frequencies of n draws from fixed scores. */
static void draw(sampler *s, const float *scores, int n_vocab, int n, double *freq)
{
    float work[8];
    for (int i = 0; i < n_vocab; i++) freq[i] = 0.0;
    for (int t = 0; t < n; t++) {
        memcpy(work, scores, (size_t)n_vocab * sizeof(*work));
        int32_t id = sampler_pick(s, work, n_vocab);
        if (id >= 0) freq[id] += 1.0 / n;
    }
}

static void test_sampler(void)
{
    const float p[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    struct {
        float temperature;
        int top_k;
        float top_p;
        double expected[3];
    } cases[] = {
        {1.0f, 0, 1.0f, {0.5, 0.3, 0.2}},
        {1.0f, 0, 0.75f, {0.625, 0.375, 0.0}},  /* cumsum .2 <= .25 removes the last */
        {1.0f, 2, 1.0f, {0.625, 0.375, 0.0}},
        {2.0f, 0, 1.0f, {0.4155, 0.3218, 0.2628}}, /* proportional to sqrt(p) */
    };
    error err;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        sampler s;
        if (sampler_init(&s, cases[c].temperature, cases[c].top_k, cases[c].top_p, 11, 3, &err) !=
            R2GEN_OK)
            return;
        double freq[3];
        draw(&s, p, 3, 20000, freq);
        for (int i = 0; i < 3; i++)
            CHECK(fabs(freq[i] - cases[c].expected[i]) < 0.015, "case %zu token %d: %.4f vs %.4f",
                  c, i, freq[i], cases[c].expected[i]);
        sampler_free(&s);
    }
    /* top_k keeps every score tied with the k-th. */
    const float tied[4] = {1.0f, 1.0f, 1.0f, 0.0f};
    sampler s;
    if (sampler_init(&s, 1.0f, 2, 1.0f, 5, 4, &err) != R2GEN_OK) return;
    double freq[4];
    draw(&s, tied, 4, 3000, freq);
    CHECK(freq[0] > 0.25 && freq[1] > 0.25 && freq[2] > 0.25 && freq[3] == 0.0,
          "top_k ties: %.3f %.3f %.3f %.3f", freq[0], freq[1], freq[2], freq[3]);
    float masked[2] = {-INFINITY, -INFINITY};
    CHECK(sampler_pick(&s, masked, 2) == -1, "drew from all -inf");
    sampler_free(&s);
}

static void test_sampling_runs(void)
{
    generate_config greedy = base_config(1, 12);
    greedy.repetition_penalty = 1.2f;
    generate_result reference, a, b, c;
    if (run(hashed_script, NULL, 50, &greedy, &reference, NULL) != R2GEN_OK) return;

    generate_config cfg = greedy;
    cfg.do_sample = 1;
    cfg.seed = 42;
    run(hashed_script, NULL, 50, &cfg, &a, NULL);
    run(hashed_script, NULL, 50, &cfg, &b, NULL);
    CHECK(same_sequence(&a, b.sequence, b.n), "the same seed gave different tokens");
    cfg.seed = 43;
    run(hashed_script, NULL, 50, &cfg, &c, NULL);
    CHECK(!same_sequence(&a, c.sequence, c.n), "seeds 42 and 43 gave the same 12 tokens");
    generate_result_free(&a);
    generate_result_free(&b);
    generate_result_free(&c);

    /* top_k 1 and a tiny top_p leave only the argmax: greedy. */
    cfg.top_k = 1;
    run(hashed_script, NULL, 50, &cfg, &a, NULL);
    CHECK(same_sequence(&a, reference.sequence, reference.n), "top_k 1 is not greedy");
    cfg.top_k = 0;
    cfg.top_p = 1e-6f;
    cfg.temperature = 0.7f;
    run(hashed_script, NULL, 50, &cfg, &b, NULL);
    CHECK(same_sequence(&b, reference.sequence, reference.n), "tiny top_p is not greedy");
    generate_result_free(&a);
    generate_result_free(&b);
    generate_result_free(&reference);

    /* min_new_tokens masks eos in sampling too; a sampled eos ends the run. */
    float flat = 0.0f;
    cfg = base_config(1, 8);
    cfg.do_sample = 1;
    cfg.min_new_tokens = 5;
    int ok = 1;
    for (uint64_t seed = 0; seed < 40 && ok; seed++) {
        cfg.seed = seed;
        if (run(flat_script, &flat, 3, &cfg, &a, NULL) != R2GEN_OK) return;
        for (size_t i = 1; i < a.n; i++) {
            int is_eos = a.sequence[i] == 2;
            if ((is_eos && i <= 5) || (is_eos != (i == a.n - 1 && a.stopped_by_eos))) ok = 0;
        }
        generate_result_free(&a);
    }
    CHECK(ok, "eos sampled before min_new_tokens or not ending the run");
}

int main(void)
{
    test_greedy();
    test_beam();
    test_beam_reordering();
    test_cancel();
    test_invalid();
    test_top_candidates();
    test_hypotheses();
    test_sampler();
    test_sampling_runs();
    return check_summary();
}
