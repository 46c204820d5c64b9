/* Throughput of the LLaMA projections (lib/ops/projection.h) on Llama-2-7B-shaped layers: q, k, v
 * as one projection, attn_output, gate and up as one, ffn_down, for `layers` layers (default 8:
 * about 0.9 GB of q4_0, well past the last-level cache, as in a real decode step), with the rows
 * of a greedy step (1), a 3-beam step (3), 8 rows and a prefill (81).
 *
 *   bench_projection [q4_0|q8_0|q4_K|q6_K [layers [threads]]]
 *
 * GB/s counts the weight bytes read once per pass over the layers; GFLOP/s 2 * m * weights;
 * "read GB/s" is a plain read of the same packed bytes, alternated with the products. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kernels/quant.h"
#include "ops/projection.h"
/* The unit tests' generator of random weight rows, compiled in so the benchmark stays one file. */
#include "../tests/kernels/random_blocks.c"

enum { N_EMBD = 4096, N_FF = 11008, MAX_M = 81 };

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct layer {
    tensor weights[7]; /* q, k, v, o, gate, up, down */
    projection qkv, o, gate_up, down;
} layer;

static void make_tensor(test_rng *rng, tensor *t, tensor_type type, int64_t n_in, int64_t n_out)
{
    size_t bytes = tensor_row_bytes(type, n_in) * (size_t)n_out;
    void *data = malloc(bytes);
    if (!data) exit(1);
    random_rows(rng, type, data, n_out, n_in, 0.001f, 0.01f);
    *t = (tensor){.name = "w", .type = type, .n_dims = 2, .ne = {n_in, n_out, 1, 1}, .data = data,
                  .n_bytes = bytes};
}

static void pack(projection *p, int n_parts, const tensor *parts)
{
    const tensor *list[3] = {&parts[0], n_parts > 1 ? &parts[1] : NULL, n_parts > 2 ? &parts[2] : NULL};
    projection_init(p, n_parts, list);
    size_t bytes = projection_packed_bytes(p);
    void *memory = NULL;
    /* (2 MiB aligned and advised like the model's packed weights, to get the same huge pages) */
    if (bytes > 0 && posix_memalign(&memory, 2 << 20, bytes) == 0) {
        madvise(memory, bytes, MADV_HUGEPAGE);
        projection_pack(p, memory, 2);
    }
}

/* Seconds to read every layer's packed bytes once with a plain summing loop: what this memory
 * gives a pure stream right now (the machine's bandwidth moves with other tenants' load). */
static double read_seconds(const layer *layers, int n_layers, int n_threads)
{
    double t0 = now_seconds();
    uint64_t total = 0;
    for (int i = 0; i < n_layers; i++) {
        const projection *ps[] = {&layers[i].qkv, &layers[i].o, &layers[i].gate_up, &layers[i].down};
        for (int k = 0; k < 4; k++) {
            const uint64_t *words = (const uint64_t *)ps[k]->packed;
            int64_t n = (int64_t)(projection_packed_bytes(ps[k]) / sizeof *words);
#pragma omp parallel for num_threads(n_threads) reduction(+ : total) schedule(static)
            for (int64_t w = 0; w < n; w++) total += words[w];
        }
    }
    double seconds = now_seconds() - t0;
    return total == 1 ? 0.0 : seconds; /* (uses the sum, so the loop is not dropped) */
}

/* One pass of m rows over every layer's four projections. */
static void run(const compute *cpu, layer *layers, int n_layers, int64_t m, float *x, float **y)
{
    error err = {0};
    for (int i = 0; i < n_layers; i++) {
        float *qkv[] = {y[0], y[1], y[2]}, *gate_up[] = {y[0], y[1]};
        projection_forward(cpu, &layers[i].qkv, x, m, qkv, &err);
        projection_forward(cpu, &layers[i].o, x, m, y, &err);
        projection_forward(cpu, &layers[i].gate_up, x, m, gate_up, &err);
        projection_forward(cpu, &layers[i].down, y[2], m, y, &err);
    }
}

int main(int argc, char **argv)
{
    static const tensor_type types[] = {TENSOR_Q4_0, TENSOR_Q8_0, TENSOR_Q4_K, TENSOR_Q6_K};
    tensor_type type = TENSOR_Q4_0;
    for (size_t t = 0; argc > 1 && t < sizeof types / sizeof types[0]; t++)
        if (strcmp(argv[1], tensor_type_name(types[t])) == 0) type = types[t];
    int n_layers = argc > 2 ? atoi(argv[2]) : 8, n_threads = argc > 3 ? atoi(argv[3]) : 2;
    static const int64_t row_counts[] = {1, 3, 8, 81};
    test_rng rng = {0x5851F42D4C957F2Dull};
    layer *layers = calloc((size_t)n_layers, sizeof *layers);
    float *x = malloc(sizeof(float) * MAX_M * N_FF), *y[3];
    for (int i = 0; i < 3; i++) y[i] = malloc(sizeof(float) * MAX_M * N_FF);
    if (!layers || !x || !y[0] || !y[1] || !y[2]) return 1;
    for (int64_t i = 0; i < MAX_M * N_FF; i++) x[i] = y[2][i] = rng_uniform(&rng, -1.0f, 1.0f);
    size_t bytes = 0;
    double weights = 0; /* values */
    for (int i = 0; i < n_layers; i++) {
        layer *l = &layers[i];
        static const int64_t shapes[7][2] = {{N_EMBD, N_EMBD}, {N_EMBD, N_EMBD}, {N_EMBD, N_EMBD},
                                             {N_EMBD, N_EMBD}, {N_EMBD, N_FF}, {N_EMBD, N_FF},
                                             {N_FF, N_EMBD}};
        for (int k = 0; k < 7; k++) {
            make_tensor(&rng, &l->weights[k], type, shapes[k][0], shapes[k][1]);
            bytes += l->weights[k].n_bytes;
            weights += (double)shapes[k][0] * (double)shapes[k][1];
        }
        pack(&l->qkv, 3, &l->weights[0]);
        pack(&l->o, 1, &l->weights[3]);
        pack(&l->gate_up, 2, &l->weights[4]);
        pack(&l->down, 1, &l->weights[6]);
    }
    printf("%s, %d layers (%.2f GB), %d threads, %s\n", tensor_type_name(type), n_layers, 1e-9 * bytes,
           n_threads, layers[0].qkv.packed ? "packed" : "unpacked (no packed kernels for this type on this CPU)");
    printf("%4s %10s %8s %10s %12s\n", "m", "ms/pass", "GB/s", "GFLOP/s", "read GB/s");
    compute cpu = {.n_threads = n_threads, .backend = GEMM_ONEDNN};
    for (size_t r = 0; r < sizeof row_counts / sizeof row_counts[0]; r++) {
        int64_t m = row_counts[r];
        run(&cpu, layers, n_layers, m, x, y);
        /* Product and plain read alternate, so both see the same machine. */
        double best = 1e30, best_read = 1e30, start = now_seconds();
        for (int k = 0; k < 3 || now_seconds() - start < 2.0; k++) {
            double t0 = now_seconds();
            run(&cpu, layers, n_layers, m, x, y);
            double t = now_seconds() - t0, read = read_seconds(layers, n_layers, n_threads);
            if (t < best) best = t;
            if (read < best_read) best_read = read;
        }
        printf("%4lld %10.2f %8.1f %10.1f %12.1f\n", (long long)m, 1e3 * best, 1e-9 * bytes / best,
               2e-9 * (double)m * weights / best, 1e-9 * bytes / best_read);
        fflush(stdout);
    }
    return 0;
}
