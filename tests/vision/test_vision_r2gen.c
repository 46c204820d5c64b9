/* The whole vision half on the r2gen-tiny studies: image file -> image stage -> Swin with each
 * checkpoint flavour's weights -> features_<flavour>_<view>.npy, then the study's views through
 * the projector -> embeddings_<study>.npy; all within the reference's 1e-4 (f32 weights). */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "image/image.h"
#include "npy.h"
#include "r2gen_tiny_studies.h"
#include "test_paths.h"
#include "vision/projector.h"
#include "vision/swin.h"

#define TOLERANCE 1e-4

static void compare_with(const char *name, const float *computed, size_t n_tokens, size_t dim)
{
    char relative[256], path[1024];
    snprintf(relative, sizeof relative, "r2gen-tiny/expected/%s.npy", name);
    npy_array expected;
    int ok = npy_load(test_data_path(path, sizeof path, relative), &expected) == 0;
    CHECK(ok && expected.n_dims == 2 && expected.shape[0] == n_tokens && expected.shape[1] == dim,
          "cannot read %zu x %zu floats from %s", n_tokens, dim, path);
    if (!ok) return;
    if (expected.n_elems == n_tokens * dim) {
        double diff = max_abs_diff(computed, expected.data, expected.n_elems);
        printf("  %-36s max |diff| %.3g\n", name, diff);
        CHECK(diff <= TOLERANCE, "%s: max diff %g", name, diff);
    }
    npy_free(&expected);
}

static r2gen_status encode_view(const swin_model *m, const compute *cpu, const char *image,
                                float *pixels, float *features, error *err)
{
    char relative[256], path[1024];
    snprintf(relative, sizeof relative, "r2gen-tiny/images/%s", image);
    rgb_image decoded;
    r2gen_status status = image_decode_file(test_data_path(path, sizeof path, relative), NULL,
                                            &decoded, err);
    if (status != R2GEN_OK) return status;
    status = image_preprocess(&decoded, m->image_size, m->image_mean, m->image_std, pixels, err);
    rgb_image_free(&decoded);
    if (status != R2GEN_OK) return status;
    return swin_encode(m, cpu, pixels, features, NULL, err);
}

static void check_study(const study *s, const compute *cpu)
{
    char model[256], name[128];
    snprintf(model, sizeof model, R2GEN_TINY_GGUF_FORMAT, s->flavour, "f32");
    printf("%s (%s):\n", s->name, model);
    gguf_file *f = NULL;
    error err = {0};
    swin_model m;
    projector p;
    r2gen_status status = gguf_open(model, &f, &err);
    if (status == R2GEN_OK) status = swin_load(f, &m, &err);
    if (status == R2GEN_OK) {
        status = projector_load(f, &p, &err);
        if (status != R2GEN_OK) swin_free(&m);
    }
    CHECK(status == R2GEN_OK, "%s: %s", model, err.message);
    if (status != R2GEN_OK) {
        gguf_close(f);
        return;
    }

    size_t features_len = (size_t)m.n_tokens * m.num_features;
    float *pixels = malloc((size_t)3 * m.image_size * m.image_size * sizeof *pixels);
    float *features = malloc(STUDY_MAX_VIEWS * features_len * sizeof *features);
    float *embeddings = malloc((size_t)m.n_tokens * p.n_embd * sizeof *embeddings);
    const float *views[STUDY_MAX_VIEWS];
    for (int v = 0; v < s->n_views && status == R2GEN_OK; v++) {
        float *view = features + v * features_len;
        status = encode_view(&m, cpu, s->views[v].image, pixels, view, &err);
        CHECK(status == R2GEN_OK, "%s: %s", s->views[v].image, err.message);
        if (status == R2GEN_OK)
            compare_with(s->views[v].features, view, m.n_tokens, m.num_features);
        views[v] = view;
    }
    if (status == R2GEN_OK) {
        status = projector_apply(&p, cpu, views, s->n_views, m.n_tokens, embeddings, &err);
        CHECK(status == R2GEN_OK, "projector_apply: %s", err.message);
        snprintf(name, sizeof name, "embeddings_%s", s->name);
        compare_with(name, embeddings, m.n_tokens, p.n_embd);
    }
    free(embeddings);
    free(features);
    free(pixels);
    swin_free(&m);
    gguf_close(f);
}

int main(void)
{
    compute cpu = {2, GEMM_ONEDNN, 0};
    for (int i = 0; i < R2GEN_TINY_N_STUDIES; i++) check_study(&r2gen_tiny_studies[i], &cpu);
    return check_summary();
}
