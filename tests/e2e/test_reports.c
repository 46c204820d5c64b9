/* End to end through the public API, as an application links it: for every study of the
 * r2gen-tiny fixture, the view features, the study embeddings, the generated token ids and the
 * report text must be the reference's (features and embeddings within 1e-4, tokens and text
 * exactly). Also: generating from the fixture's own input sequence gives the same tokens, a
 * cancelled generation leaves the context usable, and the study rules (no image, clear). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "npy.h"
#include "r2gen.h"
#include "test_paths.h"

#define MAX_FIELD 4096
#define TOLERANCE 1e-4

typedef struct study {
    char name[64], flavour[16];
    int num_beams, min_new, max_new;
    float repetition_penalty, length_penalty;
    char images[MAX_FIELD], features[MAX_FIELD], embeddings[256], inputs_embeds[256];
    int32_t tokens[512];
    size_t n_tokens;
    char report[MAX_FIELD];
} study;

static const char *models_dir;

static int parse_tokens(char *list, int32_t *out, size_t capacity)
{
    size_t n = 0;
    for (char *t = strtok(list, ","); t && n < capacity; t = strtok(NULL, ",")) out[n++] = atoi(t);
    return (int)n;
}

static void unhex(const char *hex, char *out, size_t capacity)
{
    size_t n = 0;
    for (; hex[0] && hex[1] && n + 1 < capacity; hex += 2) {
        unsigned byte;
        sscanf(hex, "%2x", &byte);
        out[n++] = (char)byte;
    }
    out[n] = '\0';
}

/* One tab-separated line of studies.py into s; 0 at the end of the file. */
static int read_study(FILE *f, study *s)
{
    static char line[4 * MAX_FIELD];
    if (!fgets(line, sizeof line, f)) return 0;
    line[strcspn(line, "\n")] = '\0';
    char *field[14];
    int n = 0;
    for (char *at = line; n < 14; n++) {
        field[n] = at;
        char *tab = strchr(at, '\t');
        if (!tab) {
            n++;
            break;
        }
        *tab = '\0';
        at = tab + 1;
    }
    if (n != 14) return 0;
    snprintf(s->name, sizeof s->name, "%.63s", field[0]);
    snprintf(s->flavour, sizeof s->flavour, "%.15s", field[1]);
    s->num_beams = atoi(field[2]);
    s->min_new = atoi(field[3]);
    s->max_new = atoi(field[4]);
    s->repetition_penalty = strtof(field[5], NULL);
    s->length_penalty = strtof(field[6], NULL);
    snprintf(s->images, sizeof s->images, "%s", field[7]);
    snprintf(s->features, sizeof s->features, "%s", field[8]);
    snprintf(s->embeddings, sizeof s->embeddings, "%.255s", field[9]);
    snprintf(s->inputs_embeds, sizeof s->inputs_embeds, "%.255s", field[10]);
    s->n_tokens = (size_t)parse_tokens(field[11], s->tokens, 512);
    unhex(field[13], s->report, sizeof s->report);
    return 1;
}

static r2gen_ctx *load_flavour(const char *flavour)
{
    char path[512];
    snprintf(path, sizeof path, "%s/r2gen-tiny-%s-f32.gguf", models_dir, flavour);
    r2gen_load_params params = r2gen_load_params_default();
    params.n_threads = 2;
    r2gen_ctx *ctx = NULL;
    CHECK(r2gen_load(path, &params, &ctx) == R2GEN_OK, "%s", r2gen_last_error(NULL));
    return ctx;
}

static void compare_to_npy(const char *what, const float *got, size_t n, const char *relative)
{
    char path[512], file[512];
    snprintf(file, sizeof file, "r2gen-tiny/%s", relative);
    npy_array want;
    if (npy_load(test_data_path(path, sizeof path, file), &want) != 0) {
        CHECK(0, "cannot read %s", path);
        return;
    }
    CHECK(want.n_elems == n, "%s: %zu values, fixture has %zu", what, n, want.n_elems);
    if (want.n_elems == n) {
        double diff = max_abs_diff(got, want.data, n);
        CHECK(diff <= TOLERANCE, "%s: max |diff| %.3g", what, diff);
        printf("  %-44s max |diff| %.2e\n", what, diff);
    }
    npy_free(&want);
}

static void encode_views(r2gen_ctx *ctx, const study *s)
{
    char list[MAX_FIELD], feature_list[MAX_FIELD], path[512], file[512];
    snprintf(list, sizeof list, "%s", s->images);
    snprintf(feature_list, sizeof feature_list, "%s", s->features);
    char *image_save, *feature_save;
    char *image = strtok_r(list, ",", &image_save);
    char *features = strtok_r(feature_list, ",", &feature_save);
    for (int view = 0; image && features; view++) {
        snprintf(file, sizeof file, "r2gen-tiny/%s", image);
        CHECK(r2gen_encode_image_file(ctx, test_data_path(path, sizeof path, file)) == R2GEN_OK,
              "%s: %s", image, r2gen_last_error(ctx));
        size_t rows = 0, cols = 0;
        CHECK(r2gen_get_view_features(ctx, view, NULL, 0, &rows, &cols) == R2GEN_OK, "shape");
        float *got = malloc(rows * cols * sizeof *got);
        CHECK(r2gen_get_view_features(ctx, view, got, rows * cols - 1, NULL, NULL) ==
                  R2GEN_ERR_BUFFER_TOO_SMALL,
              "a small buffer is refused");
        CHECK(r2gen_get_view_features(ctx, view, got, rows * cols, NULL, NULL) == R2GEN_OK, "copy");
        char what[128];
        snprintf(what, sizeof what, "%s view %d features", s->name, view);
        compare_to_npy(what, got, rows * cols, features);
        free(got);
        image = strtok_r(NULL, ",", &image_save);
        features = strtok_r(NULL, ",", &feature_save);
    }
}

static r2gen_generate_params study_params(const study *s)
{
    r2gen_generate_params p = r2gen_generate_params_default();
    p.num_beams = s->num_beams;
    p.min_new_tokens = s->min_new;
    p.max_new_tokens = s->max_new;
    p.repetition_penalty = s->repetition_penalty;
    p.length_penalty = s->length_penalty;
    return p;
}

static void check_tokens(r2gen_ctx *ctx, const study *s, const char *how)
{
    const int32_t *ids = NULL;
    size_t n = 0;
    CHECK(r2gen_get_report_tokens(ctx, &ids, &n) == R2GEN_OK, "tokens");
    int same = n == s->n_tokens && !memcmp(ids, s->tokens, n * sizeof *ids);
    CHECK(same, "%s (%s): %zu tokens, fixture %zu", s->name, how, n, s->n_tokens);
}

static void check_report(r2gen_ctx *ctx, const study *s)
{
    size_t rows = 0, cols = 0;
    CHECK(r2gen_get_image_embeddings(ctx, NULL, 0, &rows, &cols) == R2GEN_OK, "shape");
    float *embeddings = malloc(rows * cols * sizeof *embeddings);
    r2gen_get_image_embeddings(ctx, embeddings, rows * cols, NULL, NULL);
    char what[128];
    snprintf(what, sizeof what, "%s embeddings", s->name);
    compare_to_npy(what, embeddings, rows * cols, s->embeddings);
    free(embeddings);

    r2gen_generate_params p = study_params(s);
    char *report = NULL;
    CHECK(r2gen_generate_report(ctx, &p, &report) == R2GEN_OK, "%s", r2gen_last_error(ctx));
    CHECK(report && !strcmp(report, s->report), "%s: report '%s'", s->name, report);
    check_tokens(ctx, s, "report");
    r2gen_string_free(report);
}

/* The fixture's whole LLaMA input sequence through generate_from_embeddings: same tokens. */
static void check_from_embeddings(r2gen_ctx *ctx, const study *s)
{
    char path[512], file[512];
    snprintf(file, sizeof file, "r2gen-tiny/%s", s->inputs_embeds);
    npy_array inputs;
    if (npy_load(test_data_path(path, sizeof path, file), &inputs) != 0) return;
    r2gen_generate_params p = study_params(s);
    char *report = NULL;
    CHECK(r2gen_generate_from_embeddings(ctx, inputs.data, inputs.shape[0], &p, &report) ==
              R2GEN_OK,
          "%s", r2gen_last_error(ctx));
    CHECK(report && !strcmp(report, s->report), "%s: report from embeddings", s->name);
    check_tokens(ctx, s, "from embeddings");
    r2gen_string_free(report);
    npy_free(&inputs);
}

static int cancel_at_step_3(void *user, int step, int max_steps)
{
    (void)max_steps;
    *(int *)user = step;
    return step >= 3;
}

/* Cancelling through the progress callback, then the same request again: the full result. */
static void check_cancel_then_report(r2gen_ctx *ctx, const study *s)
{
    r2gen_generate_params p = study_params(s);
    int last_step = 0;
    p.progress = cancel_at_step_3;
    p.user_data = &last_step;
    char *report = (char *)"untouched";
    CHECK(r2gen_generate_report(ctx, &p, &report) == R2GEN_ERR_CANCELLED && report == NULL,
          "cancelled");
    CHECK(last_step == 3, "stopped at step %d", last_step);
    p.progress = NULL;
    CHECK(r2gen_generate_report(ctx, &p, &report) == R2GEN_OK, "%s", r2gen_last_error(ctx));
    CHECK(report && !strcmp(report, s->report), "%s: report after a cancel", s->name);
    r2gen_string_free(report);
}

static void check_study_rules(r2gen_ctx *ctx)
{
    char *report = NULL;
    r2gen_clear_images(ctx);
    CHECK(r2gen_n_views(ctx) == 0, "cleared");
    CHECK(r2gen_generate_report(ctx, NULL, &report) == R2GEN_ERR_NO_IMAGE && !report, "no image");
    CHECK(strstr(r2gen_last_error(ctx), "view") != NULL, "%s", r2gen_last_error(ctx));
    CHECK(r2gen_get_image_embeddings(ctx, NULL, 0, NULL, NULL) == R2GEN_ERR_NO_IMAGE, "none");
    CHECK(r2gen_encode_image_file(ctx, "no-such-image.png") == R2GEN_ERR_IO, "absent image");
    CHECK(r2gen_n_views(ctx) == 0, "a failed encode adds no view");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_reports STUDIES.txt MODELS_DIR\n");
        return 2;
    }
    models_dir = argv[2];
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", argv[1]);
        return 2;
    }
    study s;
    int n_studies = 0;
    while (read_study(f, &s)) {
        printf("study %s (%s)\n", s.name, s.flavour);
        r2gen_ctx *ctx = load_flavour(s.flavour);
        if (!ctx) continue;
        encode_views(ctx, &s);
        check_report(ctx, &s);
        check_from_embeddings(ctx, &s);
        if (s.num_beams > 1 && s.max_new > 5) check_cancel_then_report(ctx, &s);
        check_study_rules(ctx);
        r2gen_free(ctx);
        n_studies++;
    }
    fclose(f);
    CHECK(n_studies == 4, "%d studies read", n_studies);
    return check_summary();
}
