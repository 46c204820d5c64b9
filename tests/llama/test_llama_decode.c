/* KV-cache decoding of the f32 llama-tiny conversion:
 * - greedy decode steps equal a full prefill over prefix + the decoded tokens' embeddings;
 * - with 3 rows and reordered parents (beam search), every row's logits equal a single-row run of
 *   that row's own history, so the shared-prefix / parent-chain cache is exact;
 * - both for f32 and f16 caches; argument errors; the session's memory against its formula. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tiny_model.h"

#define N_PREFIX 38
#define N_GREEDY 5
#define N_BEAM_STEPS 6
#define N_BEAMS 3

/* Parents of each beam step after the first (rows of the previous step). */
static const int32_t beam_parents[N_BEAM_STEPS][N_BEAMS] = {
    {0, 0, 0}, {2, 0, 2}, {1, 1, 0}, {0, 2, 1}, {2, 2, 2}, {1, 0, 1},
};

static int32_t beam_token(int step, int row) { return (int32_t)(100 + 37 * step + 11 * row); }

typedef struct fixture {
    tiny_model t;
    const llama_config *c;
    compute cpu;
    float *inputs; /* [N_PREFIX][n_embd] */
} fixture;

/* Greedy decoding against a full prefill of the longer sequence. */
static void check_greedy(fixture *f, kv_type type, double tol)
{
    const llama_config *c = f->c;
    size_t n_vocab = (size_t)c->n_vocab, n_embd = (size_t)c->n_embd;
    int n_total = N_PREFIX + N_GREEDY;
    float *step_logits = malloc(sizeof(float) * (N_GREEDY + 1) * n_vocab);
    float *all_logits = malloc(sizeof(float) * n_total * n_vocab);
    float *sequence = malloc(sizeof(float) * n_total * n_embd);
    float *again = malloc(sizeof(float) * n_vocab);
    int32_t tokens[N_GREEDY];
    error err = {0};
    llama_session *s = NULL, *full = NULL;
    r2gen_status st = llama_session_create(f->t.model, 1, n_total, type, &s, &err);
    if (st == R2GEN_OK) st = llama_prefill(s, &f->cpu, f->inputs, N_PREFIX, step_logits, NULL, &err);
    for (int i = 0; st == R2GEN_OK && i < N_GREEDY; i++) {
        tokens[i] = argmax(step_logits + i * n_vocab, c->n_vocab);
        st = llama_decode(s, &f->cpu, &tokens[i], NULL, 1, step_logits + (i + 1) * n_vocab, &err);
    }
    CHECK(st == R2GEN_OK, "greedy decoding: %s", err.message);
    if (st != R2GEN_OK) goto done;
    printf("kv %s greedy tokens:", type == KV_F16 ? "f16" : "f32");
    for (int i = 0; i < N_GREEDY; i++) printf(" %d", tokens[i]);
    printf("\n");

    /* Positions 0..N_PREFIX+N_GREEDY-1 in one prefill: the last N_GREEDY + 1 rows of its logits are
     * what the prefill and decode steps produced. */
    memcpy(sequence, f->inputs, sizeof(float) * N_PREFIX * n_embd);
    st = llama_embed_tokens(f->t.model, tokens, N_GREEDY, sequence + N_PREFIX * n_embd, &err);
    if (st == R2GEN_OK) st = llama_session_create(f->t.model, 1, n_total, KV_F32, &full, &err);
    if (st == R2GEN_OK) st = llama_prefill(full, &f->cpu, sequence, n_total, again, all_logits, &err);
    CHECK(st == R2GEN_OK, "full prefill: %s", err.message);
    if (st != R2GEN_OK) goto done;
    double d = max_abs_diff(step_logits, all_logits + (N_PREFIX - 1) * n_vocab, (N_GREEDY + 1) * n_vocab);
    printf("kv %s: decode steps vs full prefill: max |diff| %.3g\n", type == KV_F16 ? "f16" : "f32", d);
    CHECK(d <= tol, "decode steps differ from the full prefill by %g (tolerance %g)", d, tol);

    /* The session is reusable: a new prefill forgets the previous generation. */
    st = llama_prefill(s, &f->cpu, f->inputs, N_PREFIX, again, NULL, &err);
    if (st == R2GEN_OK) st = llama_decode(s, &f->cpu, &tokens[0], NULL, 1, again, &err);
    CHECK(st == R2GEN_OK, "second generation: %s", err.message);
    CHECK(st == R2GEN_OK && max_abs_diff(again, step_logits + n_vocab, n_vocab) == 0.0,
          "a second generation on the same session differs");
    /* Every position the session holds is used: one more step does not fit. */
    for (int i = 1; st == R2GEN_OK && i < N_GREEDY; i++)
        st = llama_decode(s, &f->cpu, &tokens[i], NULL, 1, again, &err);
    CHECK(st == R2GEN_OK, "refilling the session: %s", err.message);
    CHECK(llama_decode(s, &f->cpu, &tokens[0], NULL, 1, again, &err) == R2GEN_ERR_INVALID_ARGUMENT,
          "a decode step past max_positions was accepted");
done:
    llama_session_free(s);
    llama_session_free(full);
    free(step_logits);
    free(all_logits);
    free(sequence);
    free(again);
}

/* Row r of step t descends from row ancestor(t, r, s) of step s <= t. */
static int ancestor(int t, int r, int s)
{
    for (int step = t; step > s; step--) r = beam_parents[step][r];
    return r;
}

/* N_BEAMS rows with reordered parents against single-row runs of each final row's history. */
static void check_beams(fixture *f, kv_type type, double tol)
{
    const llama_config *c = f->c;
    size_t n_vocab = (size_t)c->n_vocab;
    int n_total = N_PREFIX + N_BEAM_STEPS;
    float *beam_logits = malloc(sizeof(float) * N_BEAM_STEPS * N_BEAMS * n_vocab);
    float *logits = malloc(sizeof(float) * n_vocab);
    error err = {0};
    llama_session *beams = NULL, *single = NULL;
    r2gen_status st = llama_session_create(f->t.model, N_BEAMS, n_total, type, &beams, &err);
    if (st == R2GEN_OK) st = llama_session_create(f->t.model, 1, n_total, type, &single, &err);
    if (st == R2GEN_OK) st = llama_prefill(beams, &f->cpu, f->inputs, N_PREFIX, logits, NULL, &err);
    for (int t = 0; st == R2GEN_OK && t < N_BEAM_STEPS; t++) {
        int32_t tokens[N_BEAMS];
        for (int r = 0; r < N_BEAMS; r++) tokens[r] = beam_token(t, r);
        st = llama_decode(beams, &f->cpu, tokens, t == 0 ? NULL : beam_parents[t], N_BEAMS,
                          beam_logits + (size_t)t * N_BEAMS * n_vocab, &err);
    }
    CHECK(st == R2GEN_OK, "beam decoding: %s", err.message);

    double worst = 0.0;
    for (int r = 0; st == R2GEN_OK && r < N_BEAMS; r++) {
        int last = N_BEAM_STEPS - 1;
        st = llama_prefill(single, &f->cpu, f->inputs, N_PREFIX, logits, NULL, &err);
        for (int t = 0; st == R2GEN_OK && t < N_BEAM_STEPS; t++) {
            int row = ancestor(last, r, t);
            int32_t token = beam_token(t, row);
            st = llama_decode(single, &f->cpu, &token, NULL, 1, logits, &err);
            if (st != R2GEN_OK) break;
            double d = max_abs_diff(logits, beam_logits + ((size_t)t * N_BEAMS + row) * n_vocab, n_vocab);
            if (d > worst) worst = d;
        }
        CHECK(st == R2GEN_OK, "single-row run of beam %d: %s", r, err.message);
    }
    printf("kv %s: %d beams vs single-row runs of their histories: max |diff| %.3g\n",
           type == KV_F16 ? "f16" : "f32", N_BEAMS, worst);
    CHECK(worst <= tol, "beam rows differ from single-row runs by %g (tolerance %g)", worst, tol);

    /* Bad parents and row counts. */
    int32_t tokens[N_BEAMS + 1] = {1, 2, 3, 4};
    const int32_t bad_parent[N_BEAMS] = {0, 3, 1};
    st = llama_prefill(beams, &f->cpu, f->inputs, N_PREFIX, logits, NULL, &err);
    if (st == R2GEN_OK) st = llama_decode(beams, &f->cpu, tokens, NULL, 2, beam_logits, &err);
    CHECK(st == R2GEN_OK, "two-row step: %s", err.message);
    CHECK(llama_decode(beams, &f->cpu, tokens, bad_parent, N_BEAMS, beam_logits, &err) ==
              R2GEN_ERR_INVALID_ARGUMENT,
          "parent row 3 of a 2-row step accepted");
    CHECK(llama_decode(beams, &f->cpu, tokens, NULL, N_BEAMS, beam_logits, &err) ==
              R2GEN_ERR_INVALID_ARGUMENT,
          "implicit parents (row r of a 2-row step) for 3 rows accepted");
    CHECK(llama_decode(beams, &f->cpu, tokens, beam_parents[1], N_BEAMS + 1, beam_logits, &err) ==
              R2GEN_ERR_INVALID_ARGUMENT,
          "more rows than the session holds accepted");
    llama_session_free(beams);
    llama_session_free(single);
    free(beam_logits);
    free(logits);
}

/* The session's size, as stated in llama.h, against what it allocates. */
static size_t header_formula(const llama_config *c, size_t R, size_t P, size_t e)
{
    size_t B = P > R ? P : R, C = P < LLAMA_PREFILL_CHUNK ? P : LLAMA_PREFILL_CHUNK;
    size_t q = (size_t)c->n_heads * c->head_dim, kv = (size_t)c->n_kv_heads * c->head_dim;
    return 2 * c->n_layers * (1 + R * (P - 1)) * kv * e + 2 * R * P * 4 + P * c->head_dim * 4 +
           B * (2 * c->n_embd + 2 * q + 2 * kv + 2 * c->n_ff) * 4 + B * 4 +
           c->n_heads * (C > R ? C : R) * P * 4;
}

static void check_memory(fixture *f)
{
    const int shapes[][2] = {{1, 38}, {3, 150}, {4, 512}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        for (int type = KV_F32; type <= KV_F16; type++) {
            int R = shapes[i][0], P = shapes[i][1];
            size_t formula = header_formula(f->c, R, P, type == KV_F16 ? 2 : 4);
            size_t predicted = llama_session_size(f->c, R, P, (kv_type)type);
            error err = {0};
            llama_session *s = NULL;
            struct mallinfo2 before = mallinfo2();
            r2gen_status st = llama_session_create(f->t.model, R, P, (kv_type)type, &s, &err);
            struct mallinfo2 after = mallinfo2();
            CHECK(st == R2GEN_OK, "%s", err.message);
            if (st != R2GEN_OK) continue;
            size_t measured = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
            printf("session %d rows x %d positions, kv %s: %zu bytes (formula %zu, heap grew %zu)\n",
                   R, P, type == KV_F16 ? "f16" : "f32", llama_session_bytes(s), formula, measured);
            CHECK(predicted == formula && llama_session_bytes(s) == formula,
                  "session size %zu / %zu differs from llama.h's formula %zu", predicted,
                  llama_session_bytes(s), formula);
#ifndef __SANITIZE_ADDRESS__ /* ASan's allocator does not report through mallinfo2 */
            /* malloc adds a header per block, rounds mmapped blocks to pages and may reuse or
             * trim what the previous session freed: agreement to a few KiB. */
            CHECK(measured + 16 * 1024 >= formula && measured <= formula + 16 * 1024,
                  "heap grew by %zu for a session of %zu bytes", measured, formula);
#endif
            llama_session_free(s);
        }
    }
    error err = {0};
    llama_session *s = NULL;
    CHECK(llama_session_create(f->t.model, 1, f->c->n_ctx + 1, KV_F32, &s, &err) ==
              R2GEN_ERR_INVALID_ARGUMENT && !s,
          "a session longer than n_ctx was accepted");
    CHECK(llama_session_create(f->t.model, 0, 10, KV_F32, &s, &err) == R2GEN_ERR_INVALID_ARGUMENT,
          "a session of 0 rows was accepted");
    CHECK(llama_session_create(f->t.model, 1, 10, KV_F32, &s, &err) == R2GEN_OK, "%s", err.message);
    int32_t token = 5;
    float *logits = malloc(sizeof(float) * f->c->n_vocab);
    CHECK(llama_decode(s, &f->cpu, &token, NULL, 1, logits, &err) == R2GEN_ERR_INVALID_ARGUMENT,
          "a decode step before any prefill was accepted");
    CHECK(llama_prefill(s, &f->cpu, f->inputs, 11, logits, NULL, &err) == R2GEN_ERR_INVALID_ARGUMENT,
          "a prefill longer than the session was accepted");
    free(logits);
    llama_session_free(s);
}

int main(void)
{
    fixture f;
    if (tiny_open("f32", &f.t) != 0) return 1;
    f.c = llama_get_config(f.t.model);
    f.cpu = tiny_cpu();
    f.inputs = tiny_fixture("inputs_embeds.npy", (size_t)N_PREFIX * f.c->n_embd);
    if (!f.inputs) return 1;
    check_greedy(&f, KV_F32, 1e-4);
    check_greedy(&f, KV_F16, 2e-2);
    check_beams(&f, KV_F32, 1e-5);
    check_beams(&f, KV_F16, 1e-5);
    check_memory(&f);
    free(f.inputs);
    tiny_close(&f.t);
    return check_summary();
}
