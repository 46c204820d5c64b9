/* matmul, gemm_f32 and projections against naive double-precision loops, on odd shapes, every
 * weight type, with and without bias, both GEMM backends, 1 and 2 threads, and every kernel path
 * this CPU has.
 *
 * Tolerances (per output element y = sum_i w_i x_i, S = sum_i |w_i x_i|):
 *  - float activations (f32 weights; every type when m is large enough for the GEMM route; f16
 *    and bf16 in the row kernels): the float error of any summation order is at most
 *    n_in * eps * S (eps = 2^-24 unit roundoff, doubled for safety: FLT_EPSILON).
 *  - quantised activations (q8_0/q4_0/q4_K/q6_K weights with m <= 8): each x_i is replaced by a
 *    multiple of its block's step d_b = amax_b / 127, off by at most d_b / 2 (plus 1% for the fp16
 *    rounding of d in q8_0), so the error is at most sum_i |w_i| * 0.505 * d_b(i), plus the float
 *    term above.
 *  - bf16 weights with allow_bf16 and m large (oneDNN's bf16 matmul on AVX512_BF16 CPUs): x is
 *    rounded to bf16 (relative error 2^-9), adding 2^-9 * S; the bound takes 2^-8 * S. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/quant.h"
#include "../kernels/random_blocks.h"
#include "ops/matmul.h"
#include "ops/projection.h"


typedef struct weights {
    tensor t;
    void *data;
    float *dense; /* the same weights dequantised, n_out x n_in */
} weights;

static void make_weights(test_rng *rng, weights *w, tensor_type type, int64_t n_in, int64_t n_out)
{
    size_t row_bytes = tensor_row_bytes(type, n_in);
    w->data = malloc(row_bytes * (size_t)n_out);
    w->dense = malloc(sizeof(float) * (size_t)(n_in * n_out));
    random_rows(rng, type, w->data, n_out, n_in, 0.002f, 0.02f);
    w->t = (tensor){.name = "w", .type = type, .n_dims = 2, .ne = {n_in, n_out, 1, 1},
                    .data = w->data, .n_bytes = row_bytes * (size_t)n_out};
    for (int64_t j = 0; j < n_out; j++) {
        const void *row = (const char *)w->data + (size_t)j * row_bytes;
        float *dense = w->dense + j * n_in;
        if (type == TENSOR_F32)
            memcpy(dense, row, sizeof(float) * (size_t)n_in);
        else
            kernels_for_type(&kernels_scalar, type)->to_float(row, dense, n_in);
    }
}

/* Integer-quantised weights multiply quantised activations at every m (matmul.c's routes); the
 * float types keep float activations. */
static int activations_quantised(tensor_type type)
{
    return type != TENSOR_F32 && type != TENSOR_F16 && type != TENSOR_BF16;
}

/* Quantisation step amax / 127 of the activation block holding each x[i] (blocks of `block`). */
static void block_steps(const float *x, int64_t n, int64_t block, double *step)
{
    for (int64_t b = 0; b < n; b += block) {
        float amax = 0.0f;
        for (int64_t i = b; i < b + block; i++) amax = fmaxf(amax, fabsf(x[i]));
        for (int64_t i = b; i < b + block; i++) step[i] = amax / 127.0;
    }
}

/* Values per quantised activation block of the row kernels for a weight type (the packed
 * kernels quantise every type's activations in blocks of 32). */
static int64_t row_kernel_act_block(tensor_type type)
{
    return type == TENSOR_Q4_K || type == TENSOR_Q6_K ? 256 : 32;
}

/* Counts the outputs outside their bound; reports the worst ratio error / bound. The bound allows
 * the activations' quantisation in blocks of `block` values; block 0: x is already what the
 * kernel multiplies, and only float rounding is allowed. */
static int compare(const weights *w, const float *x, int64_t m, const float *bias, const float *y,
                   int64_t block, int bf16_activations, double *worst_ratio)
{
    int64_t n_in = w->t.ne[0], n_out = w->t.ne[1];
    int quantised = block > 0 && activations_quantised(w->t.type);
    double *step = calloc((size_t)n_in, sizeof *step);
    int bad = 0;
    for (int64_t r = 0; r < m; r++) {
        const float *xr = x + r * n_in;
        if (quantised) block_steps(xr, n_in, block, step);
        for (int64_t j = 0; j < n_out; j++) {
            const float *wr = w->dense + j * n_in;
            double exact = bias ? bias[j] : 0.0, magnitude = fabs(exact), quant_bound = 0.0;
            for (int64_t i = 0; i < n_in; i++) {
                exact += (double)wr[i] * xr[i];
                magnitude += fabs((double)wr[i] * xr[i]);
                quant_bound += fabs(wr[i]) * 0.505 * step[i];
            }
            double bound = (double)(n_in + 1) * FLT_EPSILON * magnitude + quant_bound + 1e-6;
            if (bf16_activations) bound += 0x1p-8 * magnitude;
            double diff = fabs(y[r * n_out + j] - exact);
            if (!(diff <= bound)) bad++;
            if (diff / bound > *worst_ratio) *worst_ratio = diff / bound;
        }
    }
    free(step);
    return bad;
}

static void test_type(test_rng *rng, tensor_type type, int64_t n_in, int64_t n_out)
{
    static const int64_t row_counts[] = {1, 2, 3, 5, 17, 81};
    weights w;
    make_weights(rng, &w, type, n_in, n_out);
    float *x = malloc(sizeof(float) * 81 * (size_t)n_in);
    float *y = malloc(sizeof(float) * 81 * (size_t)n_out);
    float *bias = malloc(sizeof(float) * (size_t)n_out);
    for (int64_t i = 0; i < 81 * n_in; i++) x[i] = rng_uniform(rng, -2.0f, 2.0f);
    for (int64_t j = 0; j < n_out; j++) bias[j] = rng_uniform(rng, -1.0f, 1.0f);
    double worst_ratio = 0.0;
    for (size_t mi = 0; mi < sizeof row_counts / sizeof row_counts[0]; mi++) {
        int64_t m = row_counts[mi];
        for (int backend = GEMM_ONEDNN; backend <= GEMM_OPENBLAS; backend++)
            for (int n_threads = 1; n_threads <= 2; n_threads++)
                for (int variant = 0; variant < (type == TENSOR_BF16 ? 4 : 2); variant++) {
                    int with_bias = variant % 2, allow_bf16 = variant / 2;
                    compute cpu = {.n_threads = n_threads, .backend = (gemm_backend)backend,
                                   .allow_bf16 = allow_bf16};
                    const float *b = with_bias ? bias : NULL;
                    error err = {0};
                    for (int64_t i = 0; i < m * n_out; i++) y[i] = NAN;
                    r2gen_status status = matmul(&cpu, y, x, m, &w.t, b, &err);
                    CHECK(status == R2GEN_OK, "%s: %s", tensor_type_name(type), err.message);
                    int bad = compare(&w, x, m, b, y, row_kernel_act_block(type), allow_bf16,
                                      &worst_ratio);
                    CHECK(bad == 0,
                          "%s %s m=%lld n_in=%lld n_out=%lld backend=%d threads=%d bias=%d "
                          "allow_bf16=%d: %d outputs outside the bound",
                          kernels_select()->name, tensor_type_name(type), (long long)m,
                          (long long)n_in, (long long)n_out, backend, n_threads, with_bias,
                          allow_bf16, bad);
                }
    }
    printf("%-7s %-5s n_in=%-4lld n_out=%-4lld worst error/bound = %.3f\n",
           kernels_select()->name, tensor_type_name(type), (long long)n_in, (long long)n_out,
           worst_ratio);
    free(x);
    free(y);
    free(bias);
    free(w.data);
    free(w.dense);
}

/* gemm_f32 with sub-matrix leading dimensions, both B layouts, alpha and beta. */
static void test_gemm_f32(test_rng *rng)
{
    const int64_t m = 7, n = 13, k = 19, lda = 23, ldb_t = 21, ldb_n = 17, ldc = 15;
    float a[7 * 23], b[19 * 21], c[7 * 15], c0[7 * 15];
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) a[i] = rng_uniform(rng, -1.0f, 1.0f);
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) b[i] = rng_uniform(rng, -1.0f, 1.0f);
    for (size_t i = 0; i < sizeof c0 / sizeof c0[0]; i++) c0[i] = rng_uniform(rng, -1.0f, 1.0f);
    const float alpha = 0.75f, beta = -0.5f;
    for (int backend = GEMM_ONEDNN; backend <= GEMM_OPENBLAS; backend++)
        for (int n_threads = 1; n_threads <= 2; n_threads++)
            for (int transposed = 0; transposed <= 1; transposed++) {
                compute cpu = {.n_threads = n_threads, .backend = (gemm_backend)backend};
                int64_t ldb = transposed ? ldb_t : ldb_n;
                memcpy(c, c0, sizeof c);
                gemm_f32(&cpu, m, n, k, alpha, a, lda, b, ldb, transposed, beta, c, ldc);
                double worst = 0.0;
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n; j++) {
                        double sum = 0.0;
                        for (int64_t p = 0; p < k; p++)
                            sum += (double)a[i * lda + p] *
                                   (transposed ? b[j * ldb + p] : b[p * ldb + j]);
                        double exact = alpha * sum + beta * c0[i * ldc + j];
                        worst = fmax(worst, fabs(exact - c[i * ldc + j]));
                    }
                /* |terms| <= 1, so the float error is below (k + 2) * eps * (k + 1). */
                CHECK(worst <= (k + 2) * FLT_EPSILON * (k + 1), "gemm_f32 backend %d: %g",
                      backend, worst);
                /* Columns past n in each row of C are outside the product and stay untouched. */
                int untouched = 1;
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = n; j < ldc; j++)
                        if (c[i * ldc + j] != c0[i * ldc + j]) untouched = 0;
                CHECK(untouched, "gemm_f32 wrote outside C");
            }
}

/* Rows of x quantised as the packed kernels quantise activations for weights of `type` (per group
 * of packed_act_group() values: d = max|x| / 127; q = x / d rounded to nearest even), and
 * dequantised back: what those kernels multiply. */
static void packed_activations(tensor_type type, int64_t n_in, const float *x, int64_t n, float *xq)
{
    packed_layout layout = packed_layout_of(type, n_in);
    int64_t group = packed_act_group(&layout);
    for (int64_t b = 0; b < n; b += group) {
        float amax = 0.0f;
        for (int64_t i = 0; i < group; i++) amax = fmaxf(amax, fabsf(x[b + i]));
        float d = amax / 127.0f, inv = d > 0.0f ? 1.0f / d : 0.0f;
        for (int64_t i = 0; i < group; i++) xq[b + i] = d * nearbyintf(x[b + i] * inv);
    }
}

/* A projection of three parts (the parts whose rows make whole tiles, of one type the CPU has
 * packed kernels for, packed; the others run through matmul) against the same loops, for every
 * row count a pass split can give (1..8 in one pass, 9 and 17 in two and three, a prefill's 81).
 * Packed parts are held to float rounding against the activations they multiply; unpacked ones
 * get the row kernels' quantisation bound. */
static void test_projection(test_rng *rng, const tensor_type *types, int64_t n_in,
                            const int64_t *part_rows, const int *expect_packed)
{
    static const int64_t row_counts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 81};
    weights w[3];
    const tensor *parts[3];
    float *x = malloc(sizeof(float) * 81 * (size_t)n_in), *y[3];
    for (int i = 0; i < 3; i++) {
        make_weights(rng, &w[i], types[i], n_in, part_rows[i]);
        parts[i] = &w[i].t;
        y[i] = malloc(sizeof(float) * 81 * (size_t)part_rows[i]);
    }
    for (int64_t i = 0; i < 81 * n_in; i++) x[i] = rng_uniform(rng, -2.0f, 2.0f);
    float *xq[3]; /* the activations each part's packed kernel multiplies */
    for (int i = 0; i < 3; i++) {
        xq[i] = malloc(sizeof(float) * 81 * (size_t)n_in);
        if (packed_supported(types[i], n_in)) packed_activations(types[i], n_in, x, 81 * n_in, xq[i]);
    }
    projection p;
    projection_init(&p, 3, parts);
    for (int i = 0; i < 3; i++)
        CHECK(p.part_packed[i] == expect_packed[i], "%s n_in=%lld part %d: packed %d, expected %d",
              tensor_type_name(types[i]), (long long)n_in, i, p.part_packed[i], expect_packed[i]);
    size_t packed_bytes = projection_packed_bytes(&p);
    void *memory = NULL;
    if (packed_bytes > 0 && posix_memalign(&memory, 64, packed_bytes) == 0)
        projection_pack(&p, memory, 2);
    double worst_ratio = 0.0;
    for (size_t mi = 0; mi < sizeof row_counts / sizeof row_counts[0]; mi++)
        for (int n_threads = 1; n_threads <= 2; n_threads++) {
            int64_t m = row_counts[mi];
            compute cpu = {.n_threads = n_threads, .backend = GEMM_ONEDNN};
            error err = {0};
            for (int i = 0; i < 3; i++)
                for (int64_t k = 0; k < m * part_rows[i]; k++) y[i][k] = NAN;
            CHECK(projection_forward(&cpu, &p, x, m, y, &err) == R2GEN_OK, "%s", err.message);
            for (int i = 0; i < 3; i++) {
                int packed = p.packed && p.part_packed[i];
                int bad = packed ? compare(&w[i], xq[i], m, NULL, y[i], 0, 0, &worst_ratio)
                                 : compare(&w[i], x, m, NULL, y[i], row_kernel_act_block(types[i]), 0,
                                           &worst_ratio);
                CHECK(bad == 0, "projection %s %s n_in=%lld part %d (%lld rows) m=%lld threads=%d: "
                      "%d outputs outside the bound", packed ? "packed" : "unpacked",
                      tensor_type_name(types[i]), (long long)n_in, i, (long long)part_rows[i],
                      (long long)m, n_threads, bad);
            }
        }
    printf("%-7s %-5s %-5s %-5s projection n_in=%-4lld packed %d%d%d worst error/bound = %.3f\n",
           kernels_select()->name, tensor_type_name(types[0]), tensor_type_name(types[1]),
           tensor_type_name(types[2]), (long long)n_in, p.part_packed[0], p.part_packed[1],
           p.part_packed[2], worst_ratio);
    free(memory);
    free(x);
    for (int i = 0; i < 3; i++) {
        free(xq[i]);
        free(y[i]);
        free(w[i].data);
        free(w[i].dense);
    }
}

static void test_projections(test_rng *rng, kernel_path path)
{
    static const int64_t tiles[3] = {48, 16, 32}, ragged[3] = {48, 20, 32};
    static const tensor_type types[] = {TENSOR_Q4_0, TENSOR_Q8_0, TENSOR_Q4_K};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        /* q4_K: rows of whole 256-value super-blocks */
        int k4 = types[t] == TENSOR_Q4_K, packs = path >= KERNEL_AVX2;
        int64_t short_row = k4 ? 256 : 32, long_row = k4 ? 768 : 416;
        const tensor_type same[3] = {types[t], types[t], types[t]};
        const int all[3] = {packs, packs, packs}, but_ragged[3] = {packs, 0, packs};
        test_projection(rng, same, short_row, tiles, all);
        test_projection(rng, same, long_row, tiles, all);
        test_projection(rng, same, long_row, ragged, but_ragged);
    }
    /* Q4_K_M's layers: q and k in q4_K, v in q6_K; and parts of two other packed types */
    const tensor_type mixed[3] = {TENSOR_Q4_K, TENSOR_Q4_K, TENSOR_Q6_K};
    const tensor_type two[3] = {TENSOR_Q8_0, TENSOR_Q4_0, TENSOR_Q8_0};
    const int packs = path >= KERNEL_AVX2, all[3] = {packs, packs, packs};
    test_projection(rng, mixed, 512, tiles, all);
    test_projection(rng, two, 64, tiles, all);
    /* parts of 10 and 3 tiles: a many-row product takes its passes over groups of tiles
     * (PACKED_TILE_GROUP), the last group short */
    const int64_t groups[3] = {160, 48, 16};
    const tensor_type q4[3] = {TENSOR_Q4_0, TENSOR_Q4_0, TENSOR_Q4_0};
    test_projection(rng, q4, 64, groups, all);
    /* q6_K alone, as Q4_K_M's ffn_down and output, ragged too */
    const tensor_type q6[3] = {TENSOR_Q6_K, TENSOR_Q6_K, TENSOR_Q6_K};
    const int but_ragged[3] = {packs, 0, packs};
    test_projection(rng, q6, 256, tiles, all);
    test_projection(rng, q6, 768, ragged, but_ragged);
}

static void test_rejects_partial_blocks(void)
{
    uint8_t data[64] = {0};
    tensor w = {.name = "w", .type = TENSOR_Q8_0, .n_dims = 2, .ne = {40, 1, 1, 1}, .data = data,
                .n_bytes = sizeof data};
    compute cpu = {.n_threads = 1, .backend = GEMM_ONEDNN};
    float x[40] = {0}, y[1];
    error err = {0};
    CHECK(matmul(&cpu, y, x, 1, &w, NULL, &err) == R2GEN_ERR_MODEL_FORMAT, "partial block: %s",
          err.message);
}

int main(void)
{
    test_rng rng = {0x9E3779B97F4A7C15ull};
    test_gemm_f32(&rng);
    test_rejects_partial_blocks();
    static const char *paths[] = {"scalar", "avx2", "avx512"};
    for (int p = KERNEL_SCALAR; p <= KERNEL_AVX512; p++) {
        if (!kernels_for_path((kernel_path)p)) {
            printf("%s kernels: not supported by this CPU, skipped\n", paths[p]);
            continue;
        }
        setenv("R2GEN_CPU", paths[p], 1);
        for (int n_out = 29; n_out <= 261; n_out += 232) {
            test_type(&rng, TENSOR_F32, 75, n_out);
            test_type(&rng, TENSOR_F16, 75, n_out);
            test_type(&rng, TENSOR_BF16, 75, n_out);
            test_type(&rng, TENSOR_Q8_0, 160, n_out);
            test_type(&rng, TENSOR_Q4_0, 160, n_out);
            test_type(&rng, TENSOR_Q4_K, 768, n_out);
            test_type(&rng, TENSOR_Q6_K, 512, n_out);
        }
        test_projections(&rng, (kernel_path)p);
    }
    return check_summary();
}
