/* Every kernel of every path this CPU can run (scalar, AVX2, AVX-512), on random blocks laid out as
 * GGUF lays them out.
 *
 *  - Dequantisation is checked against a second, deliberately plain decoder written here from the
 *    layout description (value by value, in doubles). Tolerance: 4 * 2^-24 of |d*sc*q| + |dmin*m|,
 *    i.e. the two float roundings (product, difference) any order of evaluation may make.
 *  - Activation quantisation: each dequantised activation is within half a step (d / 2, plus
 *    2^-10 of it for the fp16 rounding of q8_0's d) of the input, and the q8_K group sums are
 *    exactly the sums of the quants.
 *  - Dot products of one weight row with 1..4 activation rows against the double-precision sum of
 *    the dequantised weights times the dequantised activations (so quantisation error is excluded
 *    and only the kernel's arithmetic is tested). Tolerance: (n + 16) * 2^-23 * sum |w_i a_i|, the
 *    worst case of float accumulation in any order plus the per-block scale products. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/quant.h"
#include "random_blocks.h"

/* ---- the test's own decoder ---- */

static double plain_half(const uint8_t *p) { return fp16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* Value e of a block of `type` starting at `block`, and the magnitude of its terms (for the
 * tolerance). Reads bytes at the documented offsets only. */
static double plain_value(tensor_type type, const uint8_t *block, int e, double *magnitude)
{
    double v;
    switch (type) {
    case TENSOR_F16: v = fp16_to_f32((uint16_t)(block[2 * e] | block[2 * e + 1] << 8)); break;
    case TENSOR_BF16: v = bf16_to_f32((uint16_t)(block[2 * e] | block[2 * e + 1] << 8)); break;
    case TENSOR_Q8_0: v = plain_half(block) * (int8_t)block[2 + e]; break;
    case TENSOR_Q4_0: {
        uint8_t byte = block[2 + e % 16];
        v = plain_half(block) * ((e < 16 ? byte & 15 : byte >> 4) - 8);
        break;
    }
    case TENSOR_Q4_K: {
        const uint8_t *s = block + 4; /* after d, dmin: 12 bytes of packed 6-bit scales/mins */
        int sub = e / 32, sc, m;
        if (sub < 4) {
            sc = s[sub] & 63;
            m = s[sub + 4] & 63;
        } else { /* low/high nibble of byte sub+4, top bits of bytes sub-4 (scale), sub (min) */
            sc = (s[sub + 4] & 15) + 16 * (s[sub - 4] >> 6);
            m = (s[sub + 4] >> 4) + 16 * (s[sub] >> 6);
        }
        uint8_t byte = block[16 + 32 * (sub / 2) + e % 32];
        int q = sub % 2 ? byte >> 4 : byte & 15;
        double scaled = plain_half(block) * sc * q, offset = plain_half(block + 2) * m;
        *magnitude = fabs(scaled) + fabs(offset);
        return scaled - offset;
    }
    case TENSOR_Q6_K: {
        const uint8_t *ql = block, *qh = block + 128;
        const int8_t *scales = (const int8_t *)(block + 192);
        int h = e / 128, quarter = (e % 128) / 32, l = e % 32;
        uint8_t low_byte = ql[64 * h + l + (quarter % 2) * 32];
        int low = quarter >= 2 ? low_byte >> 4 : low_byte & 15;
        int high = (qh[32 * h + l] >> (2 * quarter)) & 3;
        v = plain_half(block + 208) * scales[e / 16] * ((low | high << 4) - 32);
        break;
    }
    default: v = NAN;
    }
    *magnitude = fabs(v);
    return v;
}

/* A whole row of n values (n a whole number of blocks). */
static void plain_row(tensor_type type, const void *row, int64_t n, double *out, double *magnitude)
{
    int64_t block_elems = tensor_type_block_elems(type);
    size_t block_bytes = tensor_type_block_bytes(type);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *block = (const uint8_t *)row + (size_t)(i / block_elems) * block_bytes;
        out[i] = plain_value(type, block, (int)(i % block_elems), &magnitude[i]);
    }
}

/* Dequantised activation value i of a partner-format row. */
static double act_value(const type_kernels *tk, const void *act, int64_t i)
{
    if (tk->act_block_elems == 1) return ((const float *)act)[i];
    if (tk->act_block_elems == QK8_0) {
        const block_q8_0 *b = (const block_q8_0 *)act + i / QK8_0;
        return (double)fp16_to_f32(b->d) * b->qs[i % QK8_0];
    }
    if (tk->act_block_elems == QK_GROUP) {
        const block_q8_group *g = (const block_q8_group *)act + i / QK_GROUP;
        int b = (int)(i % QK_GROUP) / QK8_0;
        return (double)g->d[q8_group_lane(b)] * g->qs[q8_group_index(b, (int)(i % QK8_0))];
    }
    const block_q8_K *b = (const block_q8_K *)act + i / QK_K;
    return (double)b->d * b->qs[i % QK_K];
}

/* Quantisation step of value i of a partner-format row (0 for float activations), with room for
 * the rounding of x * (1 / d) and, for q8_0, of d to fp16. */
static double act_step(const type_kernels *tk, const void *act, int64_t i)
{
    if (tk->act_block_elems == 1) return 0.0;
    if (tk->act_block_elems == QK8_0)
        return fp16_to_f32(((const block_q8_0 *)act)[i / QK8_0].d) * (1.0 + 1.0 / 1024);
    if (tk->act_block_elems == QK_GROUP)
        return ((const block_q8_group *)act)[i / QK_GROUP].d[q8_group_lane((int)(i % QK_GROUP) / QK8_0)] *
               (1.0 + 1e-4);
    return ((const block_q8_K *)act)[i / QK_K].d * (1.0 + 1e-4);
}

/* ---- tests ---- */

static void test_to_float(const kernels *set, tensor_type type, const void *w, int64_t n)
{
    float *y = malloc(sizeof(float) * (size_t)n);
    double *expect = malloc(sizeof(double) * (size_t)n), *mag = malloc(sizeof(double) * (size_t)n);
    kernels_for_type(set, type)->to_float(w, y, n);
    plain_row(type, w, n, expect, mag);
    int bad = 0;
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double diff = fabs(y[i] - expect[i]);
        if (!(diff <= 4.0 * 0x1p-24 * mag[i])) bad++;
        worst = fmax(worst, diff);
    }
    CHECK(bad == 0, "%s %s to_float: %d values off (max diff %g)", set->name,
          tensor_type_name(type), bad, worst);
    free(y);
    free(expect);
    free(mag);
}

static void test_quantize_act(const kernels *set, tensor_type type, const type_kernels *tk,
                              const float *x, const void *act, int64_t n)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(act_value(tk, act, i) - x[i]) <= 0.5 * act_step(tk, act, i))) bad++;
    CHECK(bad == 0, "%s %s activation quantisation: %d values off by more than half a step",
          set->name, tensor_type_name(type), bad);
    if (tk->act_block_elems == QK_K) {
        const block_q8_K *b = act;
        int bad_sums = 0;
        for (int64_t blk = 0; blk < n / QK_K; blk++)
            for (int g = 0; g < QK_K / 16; g++) {
                int sum = 0;
                for (int j = 0; j < 16; j++) sum += b[blk].qs[16 * g + j];
                if (sum != b[blk].bsums[g]) bad_sums++;
            }
        CHECK(bad_sums == 0, "%s %s: %d q8_K group sums wrong", set->name,
              tensor_type_name(type), bad_sums);
    }
    if (tk->act_block_elems == QK_GROUP) {
        int bad_sums = 0;
        for (int64_t blk = 0; blk < (n + QK_GROUP - 1) / QK_GROUP * 16; blk++) {
            const block_q8_group *g = (const block_q8_group *)act + blk / 16;
            int b = (int)(blk % 16), sum = 0;
            for (int v = 0; v < QK8_0; v++) sum += g->qs[q8_group_index(b, v)];
            if (sum != g->sum[q8_group_lane(b)] || (blk >= n / QK8_0 && (sum || g->d[q8_group_lane(b)])))
                bad_sums++;
        }
        CHECK(bad_sums == 0, "%s %s: %d q8 group sums or padding blocks wrong", set->name,
              tensor_type_name(type), bad_sums);
    }
}

/* Returns the worst dot error / bound. */
static double test_type(const kernels *set, test_rng *rng, tensor_type type, int64_t n)
{
    const type_kernels *tk = kernels_for_type(set, type);
    size_t w_bytes = tensor_row_bytes(type, n), act_bytes = act_row_bytes(tk, n);
    void *w = malloc(w_bytes);
    float *x = malloc(sizeof(float) * KERNEL_MAX_ROWS * (size_t)n);
    char *act = malloc(act_bytes * KERNEL_MAX_ROWS);
    double *wv = malloc(sizeof(double) * (size_t)n), *mag = malloc(sizeof(double) * (size_t)n);
    random_rows(rng, type, w, 1, n, 0.001f, 0.05f);
    for (int64_t i = 0; i < KERNEL_MAX_ROWS * n; i++) x[i] = rng_uniform(rng, -3.0f, 3.0f);
    /* One block of an activation row all zero: its scale must come out 0, not NaN. */
    memset(x + n, 0, sizeof(float) * (size_t)tensor_type_block_elems(type));

    test_to_float(set, type, w, n);
    for (int r = 0; r < KERNEL_MAX_ROWS; r++) {
        tk->quantize_act(x + r * n, act + r * act_bytes, n);
        test_quantize_act(set, type, tk, x + r * n, act + r * act_bytes, n);
    }
    plain_row(type, w, n, wv, mag);
    double worst_ratio = 0.0;
    for (int n_rows = 1; n_rows <= KERNEL_MAX_ROWS; n_rows++) {
        float out[KERNEL_MAX_ROWS];
        tk->dot(n, w, act, act_bytes, n_rows, out);
        for (int r = 0; r < n_rows; r++) {
            double exact = 0.0, magnitude = 0.0;
            for (int64_t i = 0; i < n; i++) {
                double a = act_value(tk, act + r * act_bytes, i);
                exact += wv[i] * a;
                magnitude += mag[i] * fabs(a);
            }
            double bound = (n + 16) * FLT_EPSILON * magnitude + 1e-30;
            double diff = fabs(out[r] - exact);
            CHECK(diff <= bound, "%s %s dot n=%lld row %d of %d: %.9g vs %.9g", set->name,
                  tensor_type_name(type), (long long)n, r, n_rows, out[r], exact);
            worst_ratio = fmax(worst_ratio, diff / bound);
        }
    }
    free(w);
    free(x);
    free(act);
    free(wv);
    free(mag);
    return worst_ratio;
}

/* The environment cap: R2GEN_CPU=scalar always gives the scalar set. */
static void test_select(void)
{
    setenv("R2GEN_CPU", "scalar", 1);
    CHECK(kernels_select() == &kernels_scalar, "R2GEN_CPU=scalar gave %s", kernels_select()->name);
    unsetenv("R2GEN_CPU");
    const kernels *best = kernels_select();
    CHECK(best == kernels_for_path(best->path), "selected %s is not runnable", best->name);
    CHECK(kernels_for_type(best, TENSOR_F32) == NULL, "f32 has no row kernels");
}

int main(void)
{
    test_rng rng = {0x243F6A8885A308D3ull};
    test_select();
    for (int p = KERNEL_SCALAR; p <= KERNEL_AVX512; p++) {
        const kernels *set = kernels_for_path((kernel_path)p);
        if (!set) {
            printf("kernel path %d: not supported by this CPU, skipped\n", p);
            continue;
        }
        /* Row lengths: 16-bit floats with and without a SIMD tail; 1-5 and 17-21 blocks (whole and
         * partial groups of 16 and units of 4 in the AVX-512 q8 group layout). */
        static const tensor_type types[] = {TENSOR_F16,  TENSOR_BF16, TENSOR_Q8_0,
                                            TENSOR_Q4_0, TENSOR_Q4_K, TENSOR_Q6_K};
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            double worst = 0.0;
            for (int repeat = 0; repeat < 20; repeat++) {
                int64_t n = tensor_type_block_elems(types[t]) == 1
                                ? 8 + 37 * (repeat % 3)
                                : tensor_type_block_elems(types[t]) * (1 + repeat % 5 + 16 * (repeat % 2));
                worst = fmax(worst, test_type(set, &rng, types[t], n));
            }
            printf("%-7s %-5s dot worst error/bound = %.4f\n", set->name,
                   tensor_type_name(types[t]), worst);
        }
    }
    return check_summary();
}
