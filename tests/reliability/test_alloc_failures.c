/* Allocation-failure injection over the end-to-end path: load the tiny model, encode two views,
 * write a short beam-search report, free. The library's malloc/calloc/realloc/free are wrapped at
 * link time (alloc_hooks.h). A first clean run counts the allocations; then, for n = 1, 2, ...
 * every allocation, the n-th one fails and:
 *   - the call that hit it returns R2GEN_ERR_OUT_OF_MEMORY (load also leaves *out_ctx NULL),
 *   - the context stays usable: with injection off, the failed step and the rest of the scenario
 *     are run again and must give the clean run's report, token for token,
 *   - nothing leaks: every block the library allocated is freed once the context is freed
 *     (counted here, so Release builds check it too; LeakSanitizer checks it again under ASan).
 *
 * Usage: test_alloc_failures <r2gen-tiny.gguf> [stride]. The default stride 1 fails every
 * allocation (what CI runs); a larger stride samples every stride-th one for a quick local run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_hooks.h"
#include "check.h"
#include "r2gen.h"
#include "test_paths.h"

typedef struct scenario {
    const char *model;
    char views[2][512];
} scenario;

/* The report of the whole scenario (malloc'ed through the wrapper), or NULL; *failed_step is the
 * step whose call returned an error (0 load, 1 and 2 the views, 3 generate) or -1. Once a step
 * fails, injection is switched off and that step and the rest are retried on the same context. */
static char *run(const scenario *s, int *failed_step)
{
    *failed_step = -1;
    r2gen_load_params params = r2gen_load_params_default();
    params.n_threads = 1;
    r2gen_ctx *ctx = NULL;
    r2gen_status status = r2gen_load(s->model, &params, &ctx);
    if (status != R2GEN_OK) {
        CHECK(status == R2GEN_ERR_OUT_OF_MEMORY && ctx == NULL,
              "allocation %ld: load returned %d (%s), ctx %p", alloc_hooks_fail_at(), status,
              r2gen_last_error(NULL), (void *)ctx);
        return NULL; /* nothing to reuse: the caller checks for leaks */
    }
    r2gen_generate_params p = r2gen_generate_params_default();
    p.num_beams = 2;
    p.min_new_tokens = 2;
    p.max_new_tokens = 6;
    char *report = NULL;
    for (int step = 1; step <= 3; step++) {
        for (int attempt = 0; attempt < 2; attempt++) {
            status = step < 3 ? r2gen_encode_image_file(ctx, s->views[step - 1])
                              : r2gen_generate_report(ctx, &p, &report);
            if (status == R2GEN_OK) break;
            CHECK(status == R2GEN_ERR_OUT_OF_MEMORY && attempt == 0,
                  "allocation %ld: step %d returned %d (%s)", alloc_hooks_fail_at(), step, status,
                  r2gen_last_error(ctx));
            CHECK(r2gen_n_views(ctx) == (step < 3 ? step - 1 : 2),
                  "allocation %ld: a failed step %d changed the study", alloc_hooks_fail_at(),
                  step);
            *failed_step = step;
            alloc_hooks_stop_failing();
        }
        if (status != R2GEN_OK) break;
    }
    r2gen_free(ctx);
    return report;
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    long stride = argc > 2 ? atol(argv[2]) : 1;
    scenario s = {.model = argv[1]};
    test_data_path(s.views[0], sizeof s.views[0], "r2gen-tiny/images/frontal_gray8.png");
    test_data_path(s.views[1], sizeof s.views[1], "r2gen-tiny/images/lateral_gray8.jpg");

    int failed_step;
    alloc_hooks_reset(0);
    alloc_hooks_record_sites(1);
    char *expected = run(&s, &failed_step);
    alloc_hooks_record_sites(0);
    long total = alloc_hooks_count();
    CHECK(expected != NULL && failed_step == -1, "the clean run failed: %s", r2gen_last_error(NULL));
    CHECK(alloc_hooks_live() == 1, "the clean run leaks %ld blocks", alloc_hooks_live() - 1);
    if (!expected) return check_summary();
    printf("clean run: %ld allocations from %d call sites; report \"%s\"\n", total,
           alloc_hooks_n_sites(), expected);

    long swept = 0, reports_checked = 0;
    for (long n = 1; n <= total; n += stride, swept++) {
        alloc_hooks_reset(n);
        char *report = run(&s, &failed_step);
        CHECK(alloc_hooks_failures() == 1, "allocation %ld was not reached", n);
        if (report) {
            reports_checked++;
            CHECK(!strcmp(report, expected), "allocation %ld (failed in step %d): report \"%s\"",
                  n, failed_step, report);
            r2gen_string_free(report);
        }
        CHECK(alloc_hooks_live() == 0, "allocation %ld (failed in step %d): %ld blocks leak", n,
              failed_step, alloc_hooks_live());
    }
    alloc_hooks_stop_failing();
    r2gen_string_free(expected);
    printf("%ld of %ld allocations failed in turn; %ld runs recovered and reproduced the report\n",
           swept, total, reports_checked);
    return check_summary();
}
