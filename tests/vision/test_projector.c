/* Projector against the r2gen-tiny reference: the reference's own view features through
 * mean -> llama_proj -> layer_norm must give expected/embeddings_<study>.npy, for every study
 * (one and two views, every checkpoint flavour).
 * Usage: test_projector [weight-type tolerance]; default f32 at the reference's 1e-4. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "npy.h"
#include "r2gen_tiny_studies.h"
#include "test_paths.h"
#include "vision/projector.h"

static int load_expected(const char *name, npy_array *out)
{
    char relative[256], path[1024];
    snprintf(relative, sizeof relative, "r2gen-tiny/expected/%s.npy", name);
    int ok = npy_load(test_data_path(path, sizeof path, relative), out) == 0;
    CHECK(ok, "cannot read %s", path);
    return ok;
}

static void check_study(const study *s, const compute *cpu, const char *type, double tolerance)
{
    char model[256], name[128];
    snprintf(model, sizeof model, R2GEN_TINY_GGUF_FORMAT, s->flavour, type);
    gguf_file *f = NULL;
    error err = {0};
    projector p;
    r2gen_status status = gguf_open(model, &f, &err);
    if (status == R2GEN_OK) status = projector_load(f, &p, &err);
    CHECK(status == R2GEN_OK, "%s: %s", model, err.message);
    if (status != R2GEN_OK) {
        gguf_close(f);
        return;
    }

    npy_array features[STUDY_MAX_VIEWS], expected;
    const float *views[STUDY_MAX_VIEWS];
    int loaded = 0;
    while (loaded < s->n_views && load_expected(s->views[loaded].features, &features[loaded])) {
        views[loaded] = features[loaded].data;
        loaded++;
    }
    snprintf(name, sizeof name, "embeddings_%s", s->name);
    if (loaded == s->n_views && load_expected(name, &expected)) {
        int n_tokens = (int)features[0].shape[0];
        CHECK(features[0].shape[1] == (size_t)p.n_in && expected.shape[0] == (size_t)n_tokens &&
                  expected.shape[1] == (size_t)p.n_embd,
              "%s: shapes", s->name);
        float *embeddings = malloc(expected.n_elems * sizeof *embeddings);
        status = projector_apply(&p, cpu, views, s->n_views, n_tokens, embeddings, &err);
        CHECK(status == R2GEN_OK, "projector_apply: %s", err.message);
        double diff = max_abs_diff(embeddings, expected.data, expected.n_elems);
        printf("%-24s %s, %d view(s), %d threads: max |diff| %.3g\n", s->name, type, s->n_views,
               cpu->n_threads, diff);
        CHECK(diff <= tolerance, "%s: embeddings differ by %g", s->name, diff);
        free(embeddings);
        npy_free(&expected);
    }
    for (int v = 0; v < loaded; v++) npy_free(&features[v]);
    gguf_close(f);
}

int main(int argc, char **argv)
{
    const char *type = argc > 2 ? argv[1] : "f32";
    double tolerance = argc > 2 ? atof(argv[2]) : 1e-4;
    for (int n_threads = 1; n_threads <= 2; n_threads++) {
        compute cpu = {n_threads, GEMM_ONEDNN, 0};
        for (int i = 0; i < R2GEN_TINY_N_STUDIES; i++)
            check_study(&r2gen_tiny_studies[i], &cpu, type, tolerance);
    }
    return check_summary();
}
