/* Throughput of matmul() on LLaMA-7B-shaped products: decode steps (1 and 3 rows: greedy and a
 * 3-beam search) and a prefill (81 rows), for every weight type, on 1 and 2 threads.
 *
 *   bench_matmul [type ...]     (default: all types; e.g. `bench_matmul q4_K q6_K`)
 *
 * GB/s counts the weight bytes read once per product (what bounds decode steps); GFLOP/s counts
 * 2 * m * n_in * n_out. R2GEN_CPU=scalar|avx2 measures a lower kernel path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/quant.h"
#include "ops/matmul.h"
/* The unit tests' generator of random weight rows in GGUF layouts, compiled in so the benchmark
 * stays a single source file. */
#include "../tests/kernels/random_blocks.c"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape {
    int64_t m, n_in, n_out;
} shape;

/* Seconds per product: the fastest of the calls made in 0.5 s (after one warm-up call). The
 * fastest, not the mean, because other processes on the machine only ever add time. */
static double time_product(const compute *cpu, float *y, const float *x, int64_t m,
                           const tensor *w)
{
    error err = {0};
    if (matmul(cpu, y, x, m, w, NULL, &err) != R2GEN_OK) {
        fprintf(stderr, "matmul failed: %s\n", err.message);
        exit(1);
    }
    double start = now_seconds(), best = 1e30;
    while (now_seconds() - start < 0.5) {
        double t0 = now_seconds();
        matmul(cpu, y, x, m, w, NULL, &err);
        double t = now_seconds() - t0;
        if (t < best) best = t;
    }
    return best;
}

static int wanted(int argc, char **argv, tensor_type type)
{
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], tensor_type_name(type)) == 0) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    static const tensor_type types[] = {TENSOR_F32,  TENSOR_F16,  TENSOR_BF16, TENSOR_Q8_0,
                                        TENSOR_Q4_0, TENSOR_Q4_K, TENSOR_Q6_K};
    static const shape shapes[] = {
        {1, 4096, 4096}, {3, 4096, 4096}, {1, 4096, 11008}, {3, 4096, 11008}, {81, 4096, 4096},
    };
    const int64_t max_m = 81, max_n = 11008;
    test_rng rng = {0x5851F42D4C957F2Dull};
    float *x = malloc(sizeof(float) * (size_t)(max_m * max_n));
    float *y = malloc(sizeof(float) * (size_t)(max_m * max_n));
    void *data = malloc(tensor_row_bytes(TENSOR_F32, 4096) * (size_t)max_n);
    if (!x || !y || !data) return 1;
    for (int64_t i = 0; i < max_m * max_n; i++) x[i] = rng_uniform(&rng, -1.0f, 1.0f);
    printf("kernels: %s\n", kernels_select()->name);
    printf("%-5s %4s %6s %6s %7s %10s %8s\n", "type", "m", "n_in", "n_out", "threads", "GFLOP/s",
           "GB/s");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        if (!wanted(argc, argv, types[t])) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            shape sh = shapes[s];
            size_t bytes = tensor_row_bytes(types[t], sh.n_in) * (size_t)sh.n_out;
            random_rows(&rng, types[t], data, sh.n_out, sh.n_in, 0.001f, 0.01f);
            tensor w = {.name = "w", .type = types[t], .n_dims = 2,
                        .ne = {sh.n_in, sh.n_out, 1, 1}, .data = data, .n_bytes = bytes};
            /* bf16 weights in a prefill also run through oneDNN's bf16 matmul (allow_bf16). */
            int n_variants = types[t] == TENSOR_BF16 && sh.m > 8 ? 2 : 1;
            for (int allow_bf16 = 0; allow_bf16 < n_variants; allow_bf16++)
                for (int n_threads = 1; n_threads <= 2; n_threads++) {
                    compute cpu = {.n_threads = n_threads, .backend = GEMM_ONEDNN,
                                   .allow_bf16 = allow_bf16};
                    double seconds = time_product(&cpu, y, x, sh.m, &w);
                    printf("%-5s %4lld %6lld %6lld %7d %10.1f %8.1f%s\n",
                           tensor_type_name(types[t]), (long long)sh.m, (long long)sh.n_in,
                           (long long)sh.n_out, n_threads,
                           2e-9 * (double)(sh.m * sh.n_in * sh.n_out) / seconds,
                           1e-9 * (double)bytes / seconds, allow_bf16 ? "  (allow_bf16)" : "");
                    fflush(stdout);
                }
        }
    }
    free(x);
    free(y);
    free(data);
    return 0;
}
