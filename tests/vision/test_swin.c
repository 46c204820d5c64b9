/* Swin encoder against the swin-tiny reference: every intermediate the fixture holds.
 * Usage: test_swin [model.gguf tolerance [swin-tiny fixture folder]]; by default the f32
 * conversion of r2gen-tiny (whose Swin weights are the swin-tiny ones) at the reference's 1e-4,
 * against tests/data/swin-tiny. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "npy.h"
#include "test_paths.h"
#include "vision/swin.h"

typedef struct intermediate_check {
    const char *folder; /* fixture folder of one image */
    double tolerance;
    int compared;
    double worst;
} intermediate_check;

/* Trace callback: compare every intermediate that has a reference file; not every image has
 * every file, which the caller checks through `compared`. */
static void compare_intermediate(void *user, const char *name, const float *data,
                                 int64_t n_tokens, int64_t dim)
{
    intermediate_check *c = user;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.npy", c->folder, name);
    if (access(path, R_OK) != 0) return;
    npy_array expected;
    int loaded = npy_load(path, &expected) == 0;
    CHECK(loaded, "cannot read %s", path);
    if (!loaded) return;
    int same_shape = expected.n_elems == (size_t)(n_tokens * dim) &&
                     expected.shape[expected.n_dims - 1] == (size_t)dim;
    CHECK(same_shape, "%s: shape differs (%lld x %lld computed)", name, (long long)n_tokens,
          (long long)dim);
    if (same_shape) {
        double diff = max_abs_diff(data, expected.data, expected.n_elems);
        printf("  %-24s max |diff| %.3g\n", name, diff);
        CHECK(diff <= c->tolerance, "%s/%s: max diff %g > %g", c->folder, name, diff,
              c->tolerance);
        if (diff > c->worst) c->worst = diff;
        c->compared++;
    }
    npy_free(&expected);
}

static void check_image(const swin_model *m, const compute *cpu, const char *fixtures,
                        const char *image, int expected_files, double tolerance)
{
    char folder[1024], path[1100];
    snprintf(folder, sizeof folder, "%s/%s", fixtures, image);
    snprintf(path, sizeof path, "%s/pixel_values.npy", folder);
    npy_array pixels;
    int loaded = npy_load(path, &pixels) == 0;
    CHECK(loaded && pixels.n_elems == (size_t)3 * m->image_size * m->image_size,
          "cannot read 3 x %d x %d pixels from %s", m->image_size, m->image_size, path);
    if (!loaded) return;

    float *features = malloc((size_t)m->n_tokens * m->num_features * sizeof *features);
    intermediate_check c = {folder, tolerance, 0, 0.0};
    swin_trace trace = {compare_intermediate, &c};
    error err = {0};
    printf("%s (%d threads):\n", image, cpu->n_threads);
    r2gen_status status = swin_encode(m, cpu, pixels.data, features, &trace, &err);
    CHECK(status == R2GEN_OK, "swin_encode: %s", err.message);
    CHECK(c.compared == expected_files, "%s: compared %d of the %d reference files", image,
          c.compared, expected_files);
    printf("  worst %.3g over %d files\n", c.worst, c.compared);
    free(features);
    npy_free(&pixels);
}

int main(int argc, char **argv)
{
    char fixtures[1024];
    const char *model = argc > 2 ? argv[1] : "r2gen-tiny-shallow-f32.gguf";
    double tolerance = argc > 2 ? atof(argv[2]) : 1e-4;
    if (argc > 3)
        snprintf(fixtures, sizeof fixtures, "%s", argv[3]);
    else
        test_data_path(fixtures, sizeof fixtures, "swin-tiny");
    gguf_file *f = NULL;
    error err = {0};
    CHECK(gguf_open(model, &f, &err) == R2GEN_OK, "gguf_open %s: %s", model, err.message);
    if (check_failed) return check_summary();
    swin_model m;
    CHECK(swin_load(f, &m, &err) == R2GEN_OK, "swin_load: %s", err.message);
    if (check_failed) {
        gguf_close(f);
        return check_summary();
    }
    CHECK(m.n_stages == 4 && m.num_features == 256 && m.n_tokens == 49, "config of swin-tiny");
    CHECK(m.stages[3].window == 7 && m.stages[3].shift == 0 && m.stages[2].shift == 3,
          "the 7x7 stage must not shift");

    /* rgb8: patch_embeddings_conv, hidden_states_0..4, 8 blocks, last_hidden_state. gray16:
     * hidden_states_1..4 and last_hidden_state. Both thread counts and every product route must
     * match the reference: oneDNN with pre-packed f32 / bf16 weights (bf16 activations allowed or
     * not), and OpenBLAS, which runs even packed layers through matmul(). */
    const compute routes[] = {{1, GEMM_ONEDNN, 0}, {1, GEMM_ONEDNN, 1}, {1, GEMM_OPENBLAS, 0}};
    for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++)
        for (int n_threads = 1; n_threads <= 2; n_threads++) {
            compute cpu = routes[r];
            cpu.n_threads = n_threads;
            printf("backend %d, bf16 products %s:\n", (int)cpu.backend,
                   cpu.allow_bf16 ? "allowed" : "off");
            check_image(&m, &cpu, fixtures, "rgb8_311x257", 15, tolerance);
            check_image(&m, &cpu, fixtures, "gray16_400x380", 5, tolerance);
        }
    swin_free(&m);
    gguf_close(f);
    return check_summary();
}
