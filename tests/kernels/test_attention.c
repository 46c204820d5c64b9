/* The attention kernels (kernels/attention.h) of every path this CPU can run (R2GEN_CPU picks
 * them, as kv_cache_init does), for f32 and fp16 entries, on random keys, values, queries and
 * weights, against the same sums in doubles.
 *
 * Shapes: head_dim 128 (Llama-2), 20 (a SIMD part and a scalar tail) and 4 (tail only); 1..4 rows;
 * 0, 1, 3, 5, 16 and 37 entries (whole groups and remainders of the kernels' 2-4 keys and 16-value
 * blocks); slots drawn at random with repeats, as beam chains share entries. Tolerance:
 * (head_dim or n + 8) * 2^-23 * the sum of |terms|, the worst float accumulation in any order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "kernels/attention.h"
#include "kernels/quant.h"
#include "random_blocks.h"

enum { MAX_SLOTS = 64, MAX_DIM = 128, MAX_N = 37 };

typedef struct case_data {
    int f16;
    uint16_t halves[MAX_SLOTS * MAX_DIM]; /* the entries, as fp16 or as float */
    float floats[MAX_SLOTS * MAX_DIM];
    int32_t slots[MAX_N];
    float q[KERNEL_MAX_ROWS * MAX_DIM]; /* queries (scores) or weights p (mix), row-major */
    float out[KERNEL_MAX_ROWS * MAX_DIM];
} case_data;

static void fill(test_rng *rng, case_data *c, int f16, int head_dim, int n, int n_rows)
{
    c->f16 = f16;
    for (int i = 0; i < MAX_SLOTS * head_dim; i++) {
        c->halves[i] = f32_to_fp16(rng_uniform(rng, -2, 2));
        c->floats[i] = rng_uniform(rng, -2, 2);
    }
    for (int j = 0; j < n; j++) c->slots[j] = (int32_t)(rng_u32(rng) % MAX_SLOTS);
    for (int i = 0; i < n_rows * MAX_DIM; i++) c->q[i] = rng_uniform(rng, -1, 1);
    for (int i = 0; i < n_rows * MAX_DIM; i++) c->out[i] = rng_uniform(rng, -1, 1);
}

static const void *entries(const case_data *c) { return c->f16 ? (const void *)c->halves : c->floats; }

static double entry(const case_data *c, int head_dim, int j, int d)
{
    size_t i = (size_t)c->slots[j] * head_dim + d;
    return c->f16 ? fp16_to_f32(c->halves[i]) : c->floats[i];
}

static int check_scores(const attention_kernels *k, case_data *c, int head_dim, int n, int n_rows)
{
    float scores[KERNEL_MAX_ROWS * MAX_N], scale = 0.125f;
    k->scores(entries(c), c->f16, head_dim, c->slots, n, c->q, MAX_DIM, n_rows, scale, scores, MAX_N);
    int bad = 0;
    for (int r = 0; r < n_rows; r++)
        for (int j = 0; j < n; j++) {
            double sum = 0.0, magnitude = 0.0;
            for (int d = 0; d < head_dim; d++) {
                double term = entry(c, head_dim, j, d) * c->q[r * MAX_DIM + d];
                sum += term;
                magnitude += fabs(term);
            }
            double bound = (head_dim + 8) * 0x1p-23 * scale * magnitude;
            bad += fabs(scores[r * MAX_N + j] - scale * sum) > bound;
        }
    return bad;
}

static int check_mix(const attention_kernels *k, case_data *c, int head_dim, int n, int n_rows)
{
    float before[KERNEL_MAX_ROWS * MAX_DIM], p[KERNEL_MAX_ROWS * MAX_N];
    for (int i = 0; i < n_rows * MAX_DIM; i++) before[i] = c->out[i];
    for (int r = 0; r < n_rows; r++)
        for (int j = 0; j < n; j++) p[r * MAX_N + j] = c->q[r * MAX_DIM + j % MAX_DIM];
    k->mix(entries(c), c->f16, head_dim, c->slots, n, p, MAX_N, n_rows, c->out, MAX_DIM);
    int bad = 0;
    for (int r = 0; r < n_rows; r++)
        for (int d = 0; d < MAX_DIM; d++) {
            double sum = before[r * MAX_DIM + d], magnitude = fabs(sum);
            for (int j = 0; d < head_dim && j < n; j++) {
                double term = p[r * MAX_N + j] * entry(c, head_dim, j, d);
                sum += term;
                magnitude += fabs(term);
            }
            /* columns past head_dim must stay as they were */
            double bound = d < head_dim ? (n + 8) * 0x1p-23 * magnitude : 0.0;
            bad += fabs(c->out[r * MAX_DIM + d] - sum) > bound;
        }
    return bad;
}

int main(void)
{
    static const char *paths[] = {"scalar", "avx2", "avx512"};
    static const int dims[] = {128, 20, 4}, counts[] = {0, 1, 3, 5, 16, 37};
    test_rng rng = {0x9E3779B97F4A7C15ull};
    static case_data c;
    for (int path = KERNEL_SCALAR; path <= KERNEL_AVX512; path++) {
        if (!kernels_for_path((kernel_path)path)) {
            printf("%s: not supported by this CPU, skipped\n", paths[path]);
            continue;
        }
        setenv("R2GEN_CPU", paths[path], 1);
        const attention_kernels *k = attention_kernels_select();
        int cases = 0;
        for (int f16 = 0; f16 <= 1; f16++)
            for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
                for (size_t ni = 0; ni < sizeof counts / sizeof counts[0]; ni++)
                    for (int rows = 1; rows <= KERNEL_MAX_ROWS; rows++, cases++) {
                        int head_dim = dims[di], n = counts[ni];
                        fill(&rng, &c, f16, head_dim, n, rows);
                        int bad = check_scores(k, &c, head_dim, n, rows);
                        CHECK(bad == 0, "%s %s scores head_dim=%d n=%d rows=%d: %d off", paths[path],
                              f16 ? "f16" : "f32", head_dim, n, rows, bad);
                        bad = check_mix(k, &c, head_dim, n, rows);
                        CHECK(bad == 0, "%s %s mix head_dim=%d n=%d rows=%d: %d off", paths[path],
                              f16 ? "f16" : "f32", head_dim, n, rows, bad);
                    }
        printf("%s: %d shapes of scores and mix\n", paths[path], cases);
    }
    unsetenv("R2GEN_CPU");
    return check_summary();
}
