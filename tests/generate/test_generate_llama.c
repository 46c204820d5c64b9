/* The llama-tiny golden generations (HF 4.30.2 generate(inputs_embeds=...), cases.json): every
 * case must give exactly the reference sequence; beam cases also the winning score (1e-4) and,
 * step by step, the new beams' tokens, source rows and cumulative scores (1e-3), which locates
 * a divergence at its first step. One LLaMA session serves all cases, a cancelled run included.
 *
 * Inputs, made by the ctest fixture steps in this folder: generate-llama-tiny-f32.gguf (the
 * converter) and generate-llama-tiny-cases.txt (extract_cases.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/gguf.h"
#include "generate/generate.h"
#include "generate/llama_decoder.h"
#include "llama/llama.h"
#include "npy.h"
#include "test_paths.h"

enum { MAX_BEAMS = 3, MAX_NEW = 120, MAX_LEN = MAX_NEW + 2 };

typedef struct beam_step {
    int32_t tokens[MAX_BEAMS], from[MAX_BEAMS];
    float scores[MAX_BEAMS];
} beam_step;

typedef struct golden_case {
    char name[64];
    generate_config cfg;
    int n_steps;
    int32_t sequence[MAX_LEN];
    int n_sequence;
    double score;
    int n_trace;
    beam_step trace[MAX_NEW];
} golden_case;

/* Reads the next case; returns 0, or -1 on malformed input. */
static int read_case(FILE *f, golden_case *c)
{
    float repetition, length;
    int beams, min_new, max_new;
    if (fscanf(f, " case %63s %d %d %d %f %f %d", c->name, &beams, &min_new, &max_new,
               &repetition, &length, &c->n_steps) != 7 ||
        beams < 1 || beams > MAX_BEAMS || max_new < 1 || max_new > MAX_NEW)
        return -1;
    c->cfg = (generate_config){.num_beams = beams, .min_new_tokens = min_new,
                               .max_new_tokens = max_new, .repetition_penalty = repetition,
                               .length_penalty = length, .temperature = 1.0f, .top_p = 1.0f,
                               .bos_id = 1, .eos_id = 2, .pad_id = 0};
    if (fscanf(f, " sequence %d", &c->n_sequence) != 1 || c->n_sequence < 1 ||
        c->n_sequence > MAX_LEN)
        return -1;
    for (int i = 0; i < c->n_sequence; i++)
        if (fscanf(f, "%d", &c->sequence[i]) != 1) return -1;
    if (fscanf(f, " score %lf beams %d", &c->score, &c->n_trace) != 2 || c->n_trace < 0 ||
        c->n_trace > MAX_NEW)
        return -1;
    for (int t = 0; t < c->n_trace; t++) {
        beam_step *s = &c->trace[t];
        int step;
        if (fscanf(f, "%d", &step) != 1 || step != t) return -1;
        for (int k = 0; k < beams; k++)
            if (fscanf(f, "%d", &s->tokens[k]) != 1) return -1;
        for (int k = 0; k < beams; k++)
            if (fscanf(f, "%d", &s->from[k]) != 1) return -1;
        for (int k = 0; k < beams; k++)
            if (fscanf(f, "%f", &s->scores[k]) != 1) return -1;
    }
    return 0;
}

/* What the run did, step by step, through the on_beams and progress callbacks. */
typedef struct recorder {
    int n_steps;
    beam_step trace[MAX_NEW];
    int cancel_at_step; /* 0 = never */
} recorder;

static void record_beams(void *user, int step, const int32_t *tokens, const int32_t *parents,
                         const float *scores, int num_beams)
{
    recorder *r = user;
    if (step < 0 || step >= MAX_NEW || num_beams > MAX_BEAMS) return;
    memcpy(r->trace[step].tokens, tokens, (size_t)num_beams * sizeof(*tokens));
    memcpy(r->trace[step].from, parents, (size_t)num_beams * sizeof(*parents));
    memcpy(r->trace[step].scores, scores, (size_t)num_beams * sizeof(*scores));
}

static int count_steps(void *user, int step, int max_steps)
{
    recorder *r = user;
    r->n_steps = step;
    return step == r->cancel_at_step;
}

/* The first step whose beams differ from the reference, or -1; *max_diff gets the largest score
 * difference over the steps both have. */
static int compare_trace(const golden_case *c, const recorder *r, double *max_diff)
{
    int k = c->cfg.num_beams;
    *max_diff = 0.0;
    int first_bad = -1;
    for (int t = 0; t < c->n_trace && t < r->n_steps; t++) {
        const beam_step *want = &c->trace[t], *got = &r->trace[t];
        int same = memcmp(want->tokens, got->tokens, (size_t)k * sizeof(int32_t)) == 0 &&
                   memcmp(want->from, got->from, (size_t)k * sizeof(int32_t)) == 0;
        for (int i = 0; i < k; i++) {
            double d = fabs((double)want->scores[i] - got->scores[i]);
            if (d > *max_diff) *max_diff = d;
            if (d > 1e-3) same = 0;
        }
        if (!same && first_bad < 0) first_bad = t;
    }
    return first_bad;
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s (%zu):", what, n);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

static void run_case(const golden_case *c, const decoder *d, const compute *cpu,
                     const float *embeddings, int n_positions)
{
    static recorder rec;
    memset(&rec, 0, sizeof rec);
    generate_config cfg = c->cfg;
    cfg.on_beams = record_beams;
    cfg.progress = count_steps;
    cfg.user = &rec;
    generate_result out;
    error err = {0};
    r2gen_status status = generate_run(d, cpu, embeddings, n_positions, &cfg, &out, &err);
    CHECK(status == R2GEN_OK, "%s: %s", c->name, err.message);
    if (status != R2GEN_OK) return;

    int same = out.n == (size_t)c->n_sequence &&
               memcmp(out.sequence, c->sequence, out.n * sizeof(int32_t)) == 0;
    CHECK(same, "%s: sequence differs", c->name);
    if (!same) {
        print_ids("expected", c->sequence, (size_t)c->n_sequence);
        print_ids("got", out.sequence, out.n);
    }
    CHECK(rec.n_steps == c->n_steps, "%s: %d steps, expected %d", c->name, rec.n_steps,
          c->n_steps);
    CHECK(out.stopped_by_eos == (c->sequence[c->n_sequence - 1] == 2), "%s: stopped_by_eos %d",
          c->name, out.stopped_by_eos);
    double max_diff = 0.0;
    if (cfg.num_beams > 1) {
        CHECK(fabs(out.score - c->score) < 1e-4, "%s: score %.8f, expected %.8f", c->name,
              out.score, c->score);
        int bad = compare_trace(c, &rec, &max_diff);
        CHECK(bad < 0, "%s: beams first differ at step %d", c->name, bad);
    }
    printf("%-32s %3zu ids, %3d steps, score %+.8f (expected %+.8f), trace max diff %.2e\n",
           c->name, out.n, rec.n_steps, out.score, c->score, max_diff);
    generate_result_free(&out);
}

/* Cancel a long beam search halfway; the session must then serve the next case unharmed. */
static void check_cancel(const golden_case *c, const decoder *d, const compute *cpu,
                         const float *embeddings, int n_positions)
{
    static recorder rec;
    memset(&rec, 0, sizeof rec);
    rec.cancel_at_step = c->cfg.max_new_tokens / 2;
    generate_config cfg = c->cfg;
    cfg.progress = count_steps;
    cfg.user = &rec;
    generate_result out;
    error err = {0};
    r2gen_status status = generate_run(d, cpu, embeddings, n_positions, &cfg, &out, &err);
    CHECK(status == R2GEN_ERR_CANCELLED && out.sequence == NULL && rec.n_steps == rec.cancel_at_step,
          "%s: cancel gave status %d after %d steps", c->name, status, rec.n_steps);
}

int main(void)
{
    char path[512];
    npy_array embeds;
    if (npy_load(test_data_path(path, sizeof path, "llama-tiny/inputs_embeds.npy"), &embeds) != 0)
        return 1;
    int n_positions = (int)embeds.shape[0];
    FILE *f = fopen("generate-llama-tiny-cases.txt", "r");
    int n_cases = 0;
    if (!f || fscanf(f, " cases %d", &n_cases) != 1) {
        fprintf(stderr, "generate-llama-tiny-cases.txt: missing or malformed\n");
        return 1;
    }

    gguf_file *file = NULL;
    llama_model *model = NULL;
    llama_session *session = NULL;
    error err = {0};
    if (gguf_open("generate-llama-tiny-f32.gguf", &file, &err) != R2GEN_OK ||
        llama_load(file, 1, &model, &err) != R2GEN_OK ||
        llama_session_create(model, MAX_BEAMS, n_positions + MAX_NEW, KV_F32, &session, &err) !=
            R2GEN_OK) {
        fprintf(stderr, "llama-tiny: %s\n", err.message);
        return 1;
    }
    CHECK(llama_get_config(model)->n_embd == (int)embeds.shape[1], "embedding width");
    decoder d = llama_decoder(session, model);
    compute cpu = {.n_threads = 2, .backend = GEMM_ONEDNN};

    static golden_case c;
    for (int i = 0; i < n_cases; i++) {
        if (read_case(f, &c) != 0) {
            CHECK(0, "case %d of generate-llama-tiny-cases.txt is malformed", i);
            break;
        }
        if (c.cfg.max_new_tokens == MAX_NEW) check_cancel(&c, &d, &cpu, embeds.data, n_positions);
        run_case(&c, &d, &cpu, embeds.data, n_positions);
    }
    CHECK(n_cases == 8, "%d cases", n_cases);

    fclose(f);
    llama_session_free(session);
    llama_free(model);
    gguf_close(file);
    npy_free(&embeds);
    return check_summary();
}
