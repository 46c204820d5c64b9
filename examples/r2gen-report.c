/* r2gen-report: write the radiology report of one study (one or more views of a chest X-ray).
 *
 *   r2gen-report --model M.gguf [--llm L.gguf] [options] IMAGE [IMAGE...]
 *
 * Without --model it runs the demo model and image that the build made (random weights: the text
 * is meaningless), which shows the whole pipeline working on a fresh machine. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "r2gen.h"

typedef struct options {
    const char *model;
    const char *llm;
    int threads;
    int json;
    r2gen_generate_params generate;
    char **images;
    int n_images;
} options;

typedef struct timing {
    double start, first_step, end;
    int progress_bar;
} timing;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: r2gen-report [--model M.gguf] [--llm L.gguf] [--preset mimic|iu] [--beams N]\n"
            "                    [--min-new N] [--max-new N] [--repetition-penalty X]\n"
            "                    [--length-penalty X] [--threads N] [--json] IMAGE [IMAGE...]\n"
            "Several images are views of one study. Without --model: the build's demo model.\n");
}

static int fail(const char *what, const char *message)
{
    fprintf(stderr, "r2gen-report: %s%s%s\n", what, *message ? ": " : "", message);
    return 1;
}

static int parse_int(const char *text, int *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < 0 || v > 1000000) return 0;
    *out = (int)v;
    return 1;
}

static int parse_float(const char *text, float *out)
{
    char *end;
    *out = strtof(text, &end);
    return *text != '\0' && *end == '\0';
}

static int apply_preset(const char *name, r2gen_generate_params *p)
{
    if (!strcmp(name, "mimic")) *p = r2gen_generate_params_preset(R2GEN_PRESET_MIMIC_CXR);
    else if (!strcmp(name, "iu")) *p = r2gen_generate_params_preset(R2GEN_PRESET_IU_XRAY);
    else return 0;
    return 1;
}

/* Returns -1 to go on, otherwise the exit status. */
static int parse_options(int argc, char **argv, options *o)
{
    enum { OPT_MIN = 256, OPT_MAX, OPT_REP, OPT_LEN, OPT_VERSION };
    static const struct option long_options[] = {
        {"model", required_argument, 0, 'm'}, {"llm", required_argument, 0, 'l'},
        {"preset", required_argument, 0, 'p'}, {"beams", required_argument, 0, 'b'},
        {"min-new", required_argument, 0, OPT_MIN}, {"max-new", required_argument, 0, OPT_MAX},
        {"repetition-penalty", required_argument, 0, OPT_REP},
        {"length-penalty", required_argument, 0, OPT_LEN}, {"threads", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'}, {"version", no_argument, 0, OPT_VERSION},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c, ok = 1;
    while (ok && (c = getopt_long(argc, argv, "m:l:p:b:t:jh", long_options, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'l': o->llm = optarg; break;
        case 'p': ok = apply_preset(optarg, &o->generate); break;
        case 'b': ok = parse_int(optarg, &o->generate.num_beams); break;
        case OPT_MIN: ok = parse_int(optarg, &o->generate.min_new_tokens); break;
        case OPT_MAX: ok = parse_int(optarg, &o->generate.max_new_tokens); break;
        case OPT_REP: ok = parse_float(optarg, &o->generate.repetition_penalty); break;
        case OPT_LEN: ok = parse_float(optarg, &o->generate.length_penalty); break;
        case 't': ok = parse_int(optarg, &o->threads); break;
        case 'j': o->json = 1; break;
        case OPT_VERSION: printf("r2gen-report %s\n", r2gen_version()); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!ok) return fail("bad value for an option", optarg ? optarg : "");
    o->images = argv + optind;
    o->n_images = argc - optind;
    return -1;
}

static int progress(void *user, int step, int max_steps)
{
    timing *t = user;
    if (step == 1) t->first_step = now_seconds();
    if (t->progress_bar) {
        int width = 40, filled = max_steps ? step * width / max_steps : width;
        fprintf(stderr, "\r[%.*s%*s] %d/%d", filled, "########################################",
                width - filled, "", step, max_steps);
        if (step == max_steps) fputc('\n', stderr);
    }
    return 0;
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch == '\n') fputs("\\n", stdout);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

static void print_json(const r2gen_ctx *ctx, const char *report, double encode_s,
                       const timing *t)
{
    const int32_t *ids;
    size_t n_ids;
    r2gen_get_report_tokens(ctx, &ids, &n_ids);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double prefill = t->first_step > 0 ? t->first_step - t->start : t->end - t->start;
    fputs("{\"report\": ", stdout);
    print_json_string(report);
    fputs(", \"tokens\": [", stdout);
    for (size_t i = 0; i < n_ids; i++) printf(i ? ", %d" : "%d", ids[i]);
    printf("], \"timings\": {\"image_encode_s\": %.3f, \"prefill_s\": %.3f, \"decode_s\": %.3f}, "
           "\"peak_rss_mb\": %.1f}\n",
           encode_s, prefill, t->end - t->start - prefill, usage.ru_maxrss / 1024.0);
}

/* The demo model and image the build made, for a run without --model. */
static int use_demo(options *o, char **demo_image)
{
    static char model_path[] = R2GEN_DEMO_DIR "/demo-model.gguf";
    static char image_path[] = R2GEN_DEMO_DIR "/demo-xray.pgm";
    if (access(model_path, R_OK) != 0)
        return fail("no --model given and the demo model is missing", model_path);
    fprintf(stderr, "r2gen-report: no --model: using the demo model %s (untrained random weights: "
                    "the report text is meaningless)\n", model_path);
    o->model = model_path;
    if (o->n_images == 0) {
        *demo_image = image_path;
        o->images = demo_image;
        o->n_images = 1;
    }
    return -1;
}

static int run(const options *o)
{
    r2gen_load_params load = r2gen_load_params_default();
    load.llm_path = o->llm;
    load.n_threads = o->threads;
    r2gen_ctx *ctx = NULL;
    if (r2gen_load(o->model, &load, &ctx) != R2GEN_OK)
        return fail("cannot load the model", r2gen_last_error(NULL));
    double encode_start = now_seconds();
    for (int i = 0; i < o->n_images; i++) {
        if (r2gen_encode_image_file(ctx, o->images[i]) != R2GEN_OK) {
            int status = fail(o->images[i], r2gen_last_error(ctx));
            r2gen_free(ctx);
            return status;
        }
    }
    timing t = {now_seconds(), 0, 0, isatty(STDERR_FILENO)};
    double encode_s = t.start - encode_start;
    r2gen_generate_params p = o->generate;
    p.progress = progress;
    p.user_data = &t;
    char *report = NULL;
    r2gen_status status = r2gen_generate_report(ctx, &p, &report);
    t.end = now_seconds();
    if (status != R2GEN_OK) {
        int code = fail("cannot write the report", r2gen_last_error(ctx));
        r2gen_free(ctx);
        return code;
    }
    if (o->json) print_json(ctx, report, encode_s, &t);
    else printf("%s\n", report);
    r2gen_string_free(report);
    r2gen_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    options o = {0};
    o.generate = r2gen_generate_params_default();
    int status = parse_options(argc, argv, &o);
    if (status >= 0) return status;
    char *demo_image = NULL;
    if (!o.model && (status = use_demo(&o, &demo_image)) >= 0) return status;
    if (o.n_images == 0) {
        usage(stderr);
        return 2;
    }
    return run(&o);
}
