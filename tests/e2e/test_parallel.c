/* Contexts forked from one loaded model generate in parallel threads with exactly the results
 * of one context doing the same work serially, and forked contexts may be freed in any order
 * (the weights stay mapped until the last one goes). Run under ThreadSanitizer in CI. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "r2gen.h"
#include "test_paths.h"

#define N_THREADS 3

typedef struct job {
    r2gen_ctx *ctx;
    const char *image;
    int greedy;
    char *report;
    int32_t tokens[256];
    size_t n_tokens;
    r2gen_status status;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    r2gen_generate_params p = r2gen_generate_params_default();
    p.min_new_tokens = 5;
    p.max_new_tokens = 24;
    if (j->greedy) p.num_beams = 1;
    r2gen_clear_images(j->ctx);
    j->status = r2gen_encode_image_file(j->ctx, j->image);
    if (j->status == R2GEN_OK) j->status = r2gen_generate_report(j->ctx, &p, &j->report);
    const int32_t *ids;
    if (j->status == R2GEN_OK && r2gen_get_report_tokens(j->ctx, &ids, &j->n_tokens) == R2GEN_OK)
        memcpy(j->tokens, ids, j->n_tokens * sizeof *ids);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    char images[N_THREADS][512];
    const char *names[N_THREADS] = {"frontal_gray8.png", "lateral_gray8.jpg", "tinted_rgb8.png"};
    for (int i = 0; i < N_THREADS; i++) {
        char relative[128];
        snprintf(relative, sizeof relative, "r2gen-tiny/images/%s", names[i]);
        test_data_path(images[i], sizeof images[i], relative);
    }
    r2gen_load_params params = r2gen_load_params_default();
    params.n_threads = 1;
    r2gen_ctx *first = NULL;
    if (r2gen_load(argv[1], &params, &first) != R2GEN_OK) {
        fprintf(stderr, "%s\n", r2gen_last_error(NULL));
        return 1;
    }
    job serial[N_THREADS], parallel[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        serial[i] = (job){.ctx = first, .image = images[i], .greedy = i == 2};
        run_job(&serial[i]);
        CHECK(serial[i].status == R2GEN_OK, "serial %d: %s", i, r2gen_last_error(first));
    }
    pthread_t threads[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        parallel[i] = (job){.image = images[i], .greedy = i == 2};
        CHECK(r2gen_ctx_fork(first, &parallel[i].ctx) == R2GEN_OK, "fork");
    }
    r2gen_free(first); /* the forks keep the model alive */
    for (int i = 0; i < N_THREADS; i++) pthread_create(&threads[i], NULL, run_job, &parallel[i]);
    for (int i = 0; i < N_THREADS; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < N_THREADS; i++) {
        CHECK(parallel[i].status == R2GEN_OK, "parallel %d failed", i);
        CHECK(parallel[i].report && serial[i].report &&
                  !strcmp(parallel[i].report, serial[i].report),
              "view %d: parallel report differs", i);
        CHECK(parallel[i].n_tokens == serial[i].n_tokens &&
                  !memcmp(parallel[i].tokens, serial[i].tokens,
                          serial[i].n_tokens * sizeof(int32_t)),
              "view %d: parallel tokens differ", i);
        r2gen_string_free(serial[i].report);
        r2gen_string_free(parallel[i].report);
    }
    /* free in an order different from creation */
    r2gen_free(parallel[1].ctx);
    r2gen_free(parallel[2].ctx);
    r2gen_free(parallel[0].ctx);
    return check_summary();
}
