/* bench_r2gen: the numbers of R2GenGPT on this machine, for bench/run.
 *
 *   bench_r2gen VISION.gguf LLM.gguf IMAGE [--threads N] [--quick]
 *
 * Measures the machine's read bandwidth (the floor of a decode step is reading every weight once),
 * the Swin encoder (one view), LLaMA prefill over R2GenGPT's 81 positions, decode steps with 1
 * and with 3 rows (beams), and a whole two-view report (3 beams, 100 new tokens, </s> ignored so
 * every run does the same work). Prints a human-readable table on stderr and one JSON object as
 * the last line of stdout. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "core/gguf.h"
#include "kernels/quant.h"
#include "llama/llama.h"
#include "r2gen.h"
#include "vision/swin.h"

#define PROMPT_POSITIONS 81 /* 1 + 5 + 49 + 26: R2GenGPT's prompt with Llama-2's tokenizer */

typedef struct settings {
    const char *vision_path, *llm_path, *image_path;
    int threads;
    int quick;
} settings;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const char *message)
{
    fprintf(stderr, "bench_r2gen: %s: %s\n", what, message);
    exit(1);
}

/* Best-of-repeats read bandwidth over a buffer much larger than the caches, n threads. The sum
 * keeps 16 independent lanes so the compiler can vectorise it without reassociating: the loop is
 * limited by memory, not by a chain of dependent additions. */
#define LANES 16
static double measure_bandwidth(int threads, int repeats)
{
    size_t n = (size_t)1 << 28; /* 1 GiB of floats */
    /* huge pages, as the packed weights get them (lib/llama/llama.c) */
    float *buffer = mmap(NULL, n * sizeof *buffer, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffer == MAP_FAILED) die("bandwidth", "out of memory");
    madvise(buffer, n * sizeof *buffer, MADV_HUGEPAGE);
#pragma omp parallel for num_threads(threads)
    for (size_t i = 0; i < n; i++) buffer[i] = (float)(i & 7);
    double best = 1e30, sink = 0;
    for (int r = 0; r < repeats; r++) {
        double t0 = now(), total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            float lanes[LANES] = {0};
#pragma omp for
            for (size_t i = 0; i < n; i += LANES)
                for (int j = 0; j < LANES; j++) lanes[j] += buffer[i + j];
            for (int j = 0; j < LANES; j++) total += lanes[j];
        }
        double t = now() - t0;
        sink += total;
        if (t < best) best = t;
    }
    munmap(buffer, n * sizeof *buffer);
    return sink >= 0 ? (double)(n * sizeof(float)) / best / 1e9 : 0;
}

/* The bandwidth tests run in a child process, so their 1 GiB buffer does not count in this
 * process's peak resident memory (which the report gives for the model alone). The child is
 * forked before this process starts any OpenMP thread (libgomp's pool does not survive a fork),
 * measures once at once and once more when asked, so the second measurement sees the machine as
 * it is after the model runs. */
typedef struct bandwidth_meter {
    pid_t child;
    int results, requests; /* pipe ends: child -> parent, parent -> child */
} bandwidth_meter;

static void meter_child(int results, int requests, int threads, int repeats)
{
    char go;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && read(requests, &go, 1) != 1) _exit(1);
        double result = measure_bandwidth(threads, repeats);
        if (write(results, &result, sizeof result) != (ssize_t)sizeof result) _exit(1);
    }
    _exit(0);
}

static bandwidth_meter meter_start(int threads, int repeats)
{
    int to_parent[2], to_child[2];
    if (pipe(to_parent) != 0 || pipe(to_child) != 0) die("bandwidth", "pipe");
    pid_t child = fork();
    if (child == 0) meter_child(to_parent[1], to_child[0], threads, repeats);
    if (child < 0) die("bandwidth", "fork");
    close(to_parent[1]);
    close(to_child[0]);
    return (bandwidth_meter){child, to_parent[0], to_child[1]};
}

static double meter_read(const bandwidth_meter *meter)
{
    double result;
    if (read(meter->results, &result, sizeof result) != (ssize_t)sizeof result)
        die("bandwidth", "the measuring process failed");
    return result;
}

/* The better of the two measurements; ends the child. */
static double meter_finish(bandwidth_meter *meter, double first)
{
    if (write(meter->requests, "m", 1) != 1) die("bandwidth", "the measuring process failed");
    double second = meter_read(meter);
    close(meter->results);
    close(meter->requests);
    waitpid(meter->child, NULL, 0);
    return second > first ? second : first;
}

static double swin_ms(const gguf_file *f, const compute *cpu, int repeats)
{
    swin_model m;
    error err;
    if (swin_load(f, &m, &err) != R2GEN_OK) die("swin", err.message);
    size_t side = (size_t)m.image_size;
    float *pixels = calloc(3 * side * side, sizeof *pixels);
    float *features = malloc((size_t)m.n_tokens * m.num_features * sizeof *features);
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        if (swin_encode(&m, cpu, pixels, features, NULL, &err) != R2GEN_OK) die("swin", err.message);
        double t = now() - t0;
        if (t < best) best = t;
    }
    free(pixels);
    free(features);
    swin_free(&m);
    return best * 1e3;
}

typedef struct llama_numbers {
    double load_s, prefill_tok_s, decode_step_ms_1, decode_step_ms_3;
    size_t weights_bytes;
} llama_numbers;

static size_t weight_bytes(const gguf_file *f)
{
    size_t total = 0;
    for (size_t i = 0; i < gguf_n_tensors(f); i++) total += gguf_tensor_at(f, i)->n_bytes;
    return total;
}

/* Average ms of one decode step with `rows` rows after an 81-position prefill. */
static double decode_ms(const llama_model *m, const compute *cpu, int rows, int steps,
                        const float *prompt, double *prefill_s)
{
    const llama_config *c = llama_get_config(m);
    llama_session *s;
    error err;
    if (llama_session_create(m, rows, PROMPT_POSITIONS + steps + 1, KV_F16, &s, &err) != R2GEN_OK)
        die("session", err.message);
    float *logits = malloc((size_t)rows * c->n_vocab * sizeof *logits);
    double t0 = now();
    if (llama_prefill(s, cpu, prompt, PROMPT_POSITIONS, logits, NULL, &err) != R2GEN_OK)
        die("prefill", err.message);
    if (prefill_s) *prefill_s = now() - t0;
    int32_t tokens[3] = {100, 200, 300}, parents[3] = {0, 0, 1};
    t0 = now();
    for (int step = 0; step < steps; step++)
        if (llama_decode(s, cpu, tokens, step ? parents : NULL, rows, logits, &err) != R2GEN_OK)
            die("decode", err.message);
    double ms = (now() - t0) * 1e3 / steps;
    free(logits);
    llama_session_free(s);
    return ms;
}

static llama_numbers measure_llama(const gguf_file *f, const compute *cpu, int steps)
{
    llama_model *m;
    error err;
    double t0 = now();
    if (llama_load(f, cpu->n_threads, &m, &err) != R2GEN_OK) die("llama", err.message);
    double load_s = now() - t0;
    const llama_config *c = llama_get_config(m);
    float *prompt = malloc((size_t)PROMPT_POSITIONS * c->n_embd * sizeof *prompt);
    int32_t ids[PROMPT_POSITIONS];
    for (int i = 0; i < PROMPT_POSITIONS; i++) ids[i] = 1 + (i * 37) % (c->n_vocab - 1);
    if (llama_embed_tokens(m, ids, PROMPT_POSITIONS, prompt, &err) != R2GEN_OK)
        die("embed", err.message);
    llama_numbers out = {.load_s = load_s};
    double prefill_s;
    decode_ms(m, cpu, 1, 2, prompt, &prefill_s); /* warm-up: pages in the weights */
    out.decode_step_ms_1 = decode_ms(m, cpu, 1, steps, prompt, &prefill_s);
    out.prefill_tok_s = PROMPT_POSITIONS / prefill_s;
    out.decode_step_ms_3 = decode_ms(m, cpu, 3, steps, prompt, NULL);
    out.weights_bytes = weight_bytes(f);
    free(prompt);
    llama_free(m);
    return out;
}

/* A two-view study through the public API: encode both views, then a 3-beam report of exactly
 * 100 new tokens. */
static double end_to_end_s(const settings *s, int max_new)
{
    r2gen_load_params lp = r2gen_load_params_default();
    lp.llm_path = s->llm_path;
    lp.n_threads = s->threads;
    r2gen_ctx *ctx;
    if (r2gen_load(s->vision_path, &lp, &ctx) != R2GEN_OK) die("load", r2gen_last_error(NULL));
    double t0 = now();
    for (int view = 0; view < 2; view++)
        if (r2gen_encode_image_file(ctx, s->image_path) != R2GEN_OK)
            die("encode", r2gen_last_error(ctx));
    r2gen_generate_params p = r2gen_generate_params_default();
    p.min_new_tokens = 0;
    p.max_new_tokens = max_new;
    p.ignore_eos = 1;
    char *report;
    if (r2gen_generate_report(ctx, &p, &report) != R2GEN_OK) die("report", r2gen_last_error(ctx));
    double t = now() - t0;
    r2gen_string_free(report);
    r2gen_free(ctx);
    return t;
}

static void parse(int argc, char **argv, settings *s)
{
    if (argc < 4) die("usage", "bench_r2gen VISION.gguf LLM.gguf IMAGE [--threads N] [--quick]");
    s->vision_path = argv[1];
    s->llm_path = argv[2];
    s->image_path = argv[3];
    s->threads = 2;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) s->quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) s->threads = atoi(argv[++i]);
        else die("usage", argv[i]);
    }
}

int main(int argc, char **argv)
{
    settings s;
    parse(argc, argv, &s);
    compute cpu = {s.threads, GEMM_ONEDNN, 1};
    gguf_file *vision, *llm;
    error err;
    if (gguf_open(s.vision_path, &vision, &err) != R2GEN_OK) die("open", err.message);
    if (gguf_open(s.llm_path, &llm, &err) != R2GEN_OK) die("open", err.message);

    bandwidth_meter meter = meter_start(s.threads, s.quick ? 3 : 8);
    double bandwidth = meter_read(&meter);
    double swin = swin_ms(vision, &cpu, s.quick ? 2 : 4);
    llama_numbers l = measure_llama(llm, &cpu, s.quick ? 4 : 12);
    /* unmapped before the end-to-end run maps them again, so peak_rss_mb counts one copy */
    gguf_close(vision);
    gguf_close(llm);
    double e2e = end_to_end_s(&s, 100);
    /* Other tenants of the machine move its bandwidth: the floor takes the better of two
     * measurements, before and after. */
    bandwidth = meter_finish(&meter, bandwidth);
    double floor_ms = (double)l.weights_bytes / (bandwidth * 1e9) * 1e3;
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);

    fprintf(stderr,
            "read bandwidth   %8.1f GB/s\n"
            "decode floor     %8.1f ms/step (%.2f GB of weights)\n"
            "LLaMA load       %8.2f s (weights packed for this CPU)\n"
            "swin (1 view)    %8.1f ms\n"
            "prefill (81)     %8.1f tokens/s\n"
            "decode, 1 row    %8.1f ms/step\n"
            "decode, 3 rows   %8.1f ms/step\n"
            "two-view report  %8.2f s (3 beams, 100 new tokens)\n",
            bandwidth, floor_ms, l.weights_bytes / 1e9, l.load_s, swin, l.prefill_tok_s,
            l.decode_step_ms_1, l.decode_step_ms_3, e2e);
    printf("{\"vision_gguf\": \"%s\", \"llm_gguf\": \"%s\", \"kernels\": \"%s\", "
           "\"weights_bytes\": %zu, \"bandwidth_gb_s\": %.2f, "
           "\"floor_step_ms\": %.2f, \"llm_load_s\": %.2f, \"swin_ms\": %.1f, \"prefill_tok_s\": %.2f, "
           "\"decode_step_ms_1\": %.1f, \"decode_step_ms_3\": %.1f, \"e2e_s\": %.2f, "
           "\"peak_rss_mb\": %.0f, \"threads\": %d}\n",
           s.vision_path, s.llm_path, kernels_select()->name, l.weights_bytes, bandwidth, floor_ms,
           l.load_s, swin, l.prefill_tok_s, l.decode_step_ms_1, l.decode_step_ms_3, e2e,
           usage.ru_maxrss / 1024.0, s.threads);
    return 0;
}
