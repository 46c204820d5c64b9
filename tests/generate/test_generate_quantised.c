/* Greedy generation with quantised copies of llama-tiny (f16, q8_0, q4_0) reproduces the
 * reference's tokens as far as the reference's decision margins allow.
 *
 * A quantised model's logits differ from the f32 ones by at most LOGIT_BOUND (measured in
 * tests/llama/test_llama_reference.c, stated there as tolerances: f16 2e-2, q8_0 0.4, q4_0 5).
 * A greedy step's choice can only change when the gap between the chosen token and the runner-up
 * is at most twice that bound (times the repetition penalty, which can double a score). So every
 * step before the first one with such a small gap must produce the reference's token; after it
 * the sequences may legitimately diverge. The test asserts that prefix and prints how far the
 * tokens actually agree. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/gguf.h"
#include "generate/generate.h"
#include "generate/llama_decoder.h"
#include "llama/llama.h"
#include "npy.h"
#include "test_paths.h"

#define MAX_STEPS 128

typedef struct weight_kind {
    const char *type;
    double logit_bound;
} weight_kind;

static const weight_kind kinds[] = {{"f16", 2e-2}, {"q8_0", 0.4}, {"q4_0", 5.0}};

typedef struct greedy_case {
    char name[64];
    int min_new, max_new, n_steps;
    float repetition_penalty;
    int32_t tokens[MAX_STEPS];
    double margins[MAX_STEPS];
} greedy_case;

static int read_case(FILE *f, greedy_case *c)
{
    if (fscanf(f, " case %63s %d %d %f %d", c->name, &c->min_new, &c->max_new,
               &c->repetition_penalty, &c->n_steps) != 5 ||
        c->n_steps < 1 || c->n_steps > MAX_STEPS)
        return 0;
    for (int i = 0; i < c->n_steps; i++)
        if (fscanf(f, "%d %lf", &c->tokens[i], &c->margins[i]) != 2) return 0;
    return 1;
}

/* Steps whose margin is larger than what the weights' error can overturn. */
static int guaranteed_steps(const greedy_case *c, double logit_bound)
{
    double penalty = c->repetition_penalty > 1.0f ? c->repetition_penalty : 1.0;
    int n = 0;
    while (n < c->n_steps && c->margins[n] > 2.0 * logit_bound * penalty) n++;
    return n;
}

static void run_case(const weight_kind *kind, const greedy_case *c, const npy_array *inputs)
{
    char path[256];
    snprintf(path, sizeof path, "generate-llama-tiny-%s.gguf", kind->type);
    gguf_file *f = NULL;
    llama_model *m = NULL;
    llama_session *s = NULL;
    error err = {0};
    int n_positions = (int)inputs->shape[0];
    CHECK(gguf_open(path, &f, &err) == R2GEN_OK && llama_load(f, 1, &m, &err) == R2GEN_OK &&
              llama_session_create(m, 1, n_positions + c->max_new, KV_F32, &s, &err) == R2GEN_OK,
          "%s", err.message);
    if (s) {
        generate_config cfg = {.num_beams = 1, .min_new_tokens = c->min_new,
                               .max_new_tokens = c->max_new,
                               .repetition_penalty = c->repetition_penalty,
                               .length_penalty = 1.0f, .temperature = 1.0f, .top_p = 1.0f,
                               .bos_id = 1, .eos_id = 2, .pad_id = 0};
        decoder d = llama_decoder(s, m);
        compute cpu = {2, GEMM_ONEDNN, 1};
        generate_result result = {0};
        CHECK(generate_run(&d, &cpu, inputs->data, n_positions, &cfg, &result, &err) == R2GEN_OK,
              "%s", err.message);
        int must = guaranteed_steps(c, kind->logit_bound), agree = 0;
        while (agree < c->n_steps && agree + 1 < (int)result.n &&
               result.sequence[agree + 1] == c->tokens[agree])
            agree++;
        printf("%-5s %-22s margins guarantee %2d of %2d tokens; %2d agree\n", kind->type, c->name,
               must, c->n_steps, agree);
        CHECK(agree >= must, "%s %s: only %d tokens agree, %d guaranteed", kind->type, c->name,
              agree, must);
        generate_result_free(&result);
    }
    llama_session_free(s);
    llama_free(m);
    gguf_close(f);
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    char path[256];
    npy_array inputs;
    if (npy_load(test_data_path(path, sizeof path, "llama-tiny/inputs_embeds.npy"), &inputs) != 0)
        return 1;
    int n_cases = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        FILE *f = fopen(argv[1], "r");
        if (!f) return 1;
        greedy_case c;
        while (read_case(f, &c)) {
            run_case(&kinds[k], &c, &inputs);
            n_cases++;
        }
        fclose(f);
    }
    CHECK(n_cases == 6, "%d greedy cases run", n_cases);
    npy_free(&inputs);
    return check_summary();
}
