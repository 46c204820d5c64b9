/* Scalar reference kernels: the plainest arithmetic for each block layout of quant.h. */
#include "quant_ref.h"

#include <math.h>
#include <string.h>

/* ---- weights -> float ---- */

void f16_to_float_ref(const void *w, float *y, int64_t n)
{
    const uint16_t *h = w;
    for (int64_t i = 0; i < n; i++) y[i] = fp16_to_f32(h[i]);
}

void bf16_to_float_ref(const void *w, float *y, int64_t n)
{
    const uint16_t *h = w;
    for (int64_t i = 0; i < n; i++) y[i] = bf16_to_f32(h[i]);
}

void q8_0_to_float_ref(const void *w, float *y, int64_t n)
{
    const block_q8_0 *b = w;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        float d = fp16_to_f32(b[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = d * b[i].qs[j];
    }
}

void q4_0_to_float_ref(const void *w, float *y, int64_t n)
{
    const block_q4_0 *b = w;
    for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
        float d = fp16_to_f32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = d * ((b[i].qs[j] & 0xF) - 8);
            y[j + QK4_0 / 2] = d * ((b[i].qs[j] >> 4) - 8);
        }
    }
}

void q4_K_to_float_ref(const void *w, float *y, int64_t n)
{
    const block_q4_K *b = w;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = fp16_to_f32(b[i].d), dmin = fp16_to_f32(b[i].dmin);
        for (int sub = 0; sub < 8; sub++) {
            int sc, m;
            q4_K_scale_min(b[i].scales, sub, &sc, &m);
            const uint8_t *q = b[i].qs + 32 * (sub / 2);
            int shift = 4 * (sub % 2);
            float scale = d * sc, offset = dmin * m;
            for (int l = 0; l < 32; l++) y[32 * sub + l] = scale * ((q[l] >> shift) & 0xF) - offset;
        }
    }
}

/* The quant of value e (< 256) of a q6_K block, minus its offset of 32. */
static int q6_K_value(const block_q6_K *b, int e)
{
    return q6_K_quant(b, e) - 32;
}

void q6_K_to_float_ref(const void *w, float *y, int64_t n)
{
    const block_q6_K *b = w;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = fp16_to_f32(b[i].d);
        for (int e = 0; e < QK_K; e++) y[e] = d * b[i].scales[e / 16] * q6_K_value(&b[i], e);
    }
}

/* ---- activations ---- */

void copy_act_f32(const float *x, void *act, int64_t n) { memcpy(act, x, (size_t)n * sizeof *x); }

static float abs_max(const float *x, int n)
{
    float amax = 0.0f;
    for (int j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

/* q = x / d rounded to nearest even (what the SIMD conversions do too), within +-127. */
static void quantize_i8(const float *x, int8_t *q, int n, float d)
{
    float inv = d > 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < n; j++) {
        long v = lrintf(x[j] * inv);
        q[j] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
}

void quantize_act_q8_0(const float *x, void *act, int64_t n)
{
    block_q8_0 *b = act;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        /* d is stored as fp16: quantise with the scale it will be read back as. */
        b[i].d = f32_to_fp16(abs_max(x, QK8_0) / 127.0f);
        quantize_i8(x, b[i].qs, QK8_0, fp16_to_f32(b[i].d));
    }
}

/* Blocks of 32 with a float scale (no fp16 rounding: the format is ours), scattered into the
 * VNNI layout; blocks past n are zero with scale 0. */
void quantize_act_q8_group(const float *x, void *act, int64_t n)
{
    block_q8_group *g = act;
    int64_t n_blocks = n / QK8_0;
    for (int64_t i = 0; i < (n_blocks + 15) / 16; i++, g++) {
        memset(g, 0, sizeof *g);
        for (int b = 0; b < 16 && 16 * i + b < n_blocks; b++) {
            const float *xb = x + (16 * i + b) * QK8_0;
            int8_t q[QK8_0];
            float d = abs_max(xb, QK8_0) / 127.0f;
            quantize_i8(xb, q, QK8_0, d);
            int sum = 0;
            for (int v = 0; v < QK8_0; v++) {
                g->qs[q8_group_index(b, v)] = q[v];
                sum += q[v];
            }
            g->d[q8_group_lane(b)] = d;
            g->sum[q8_group_lane(b)] = sum;
        }
    }
}

void quantize_act_q8_K(const float *x, void *act, int64_t n)
{
    block_q8_K *b = act;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        b[i].d = abs_max(x, QK_K) / 127.0f;
        quantize_i8(x, b[i].qs, QK_K, b[i].d);
        for (int g = 0; g < QK_K / 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += b[i].qs[16 * g + j];
            b[i].bsums[g] = (int16_t)sum;
        }
    }
}

/* ---- dot products ---- */

/* The dot product of one weight row with one activation row; the table entries below run it for
 * each of their n_rows activation rows (the scalar code gains nothing from sharing weight loads). */

/* f16 and bf16 weights against float activations. */
static float row_dot_16bit(int64_t n, const uint16_t *w, const float *x, float (*to_f32)(uint16_t))
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += to_f32(w[i]) * x[i];
    return sum;
}

static float row_dot_f16(int64_t n, const void *w, const void *act)
{
    return row_dot_16bit(n, w, act, fp16_to_f32);
}

static float row_dot_bf16(int64_t n, const void *w, const void *act)
{
    return row_dot_16bit(n, w, act, bf16_to_f32);
}

/* Quant j of 32-value block i of a q8_0 or q4_0 row, and that block's scale. */
static int block32_quant(const void *w, int q4, int64_t i, int j)
{
    if (!q4) return ((const block_q8_0 *)w)[i].qs[j];
    uint8_t byte = ((const block_q4_0 *)w)[i].qs[j % 16];
    return (j < 16 ? byte & 0xF : byte >> 4) - 8;
}

static float block32_scale(const void *w, int q4, int64_t i)
{
    return fp16_to_f32(q4 ? ((const block_q4_0 *)w)[i].d : ((const block_q8_0 *)w)[i].d);
}

/* q8_0 and q4_0 weights against q8_0 activations. */
static float row_dot_blocks32(int64_t n, const void *w, const void *act, int q4)
{
    const block_q8_0 *xb = act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        int sumi = 0;
        for (int j = 0; j < 32; j++) sumi += block32_quant(w, q4, i, j) * xb[i].qs[j];
        sum += block32_scale(w, q4, i) * fp16_to_f32(xb[i].d) * (float)sumi;
    }
    return sum;
}

static float row_dot_q8_0(int64_t n, const void *w, const void *act)
{
    return row_dot_blocks32(n, w, act, 0);
}

static float row_dot_q4_0(int64_t n, const void *w, const void *act)
{
    return row_dot_blocks32(n, w, act, 1);
}

/* q4_K: sum over sub-blocks of d*sc*sum(q*a) - dmin*m*sum(a); sum(a) comes from the bsums. */
static float row_dot_q4_K(int64_t n, const void *w, const void *act)
{
    const block_q4_K *wb = w;
    const block_q8_K *xb = act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int scaled = 0, mins = 0;
        for (int sub = 0; sub < 8; sub++) {
            int sc, m;
            q4_K_scale_min(wb[i].scales, sub, &sc, &m);
            const uint8_t *q = wb[i].qs + 32 * (sub / 2);
            const int8_t *a = xb[i].qs + 32 * sub;
            int shift = 4 * (sub % 2), sumi = 0;
            for (int l = 0; l < 32; l++) sumi += ((q[l] >> shift) & 0xF) * a[l];
            scaled += sc * sumi;
            mins += m * (xb[i].bsums[2 * sub] + xb[i].bsums[2 * sub + 1]);
        }
        sum += xb[i].d *
               (fp16_to_f32(wb[i].d) * (float)scaled - fp16_to_f32(wb[i].dmin) * (float)mins);
    }
    return sum;
}

static float row_dot_q6_K(int64_t n, const void *w, const void *act)
{
    const block_q6_K *wb = w;
    const block_q8_K *xb = act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int scaled = 0;
        for (int g = 0; g < QK_K / 16; g++) {
            int sumi = 0;
            for (int j = 0; j < 16; j++)
                sumi += q6_K_value(&wb[i], 16 * g + j) * xb[i].qs[16 * g + j];
            scaled += wb[i].scales[g] * sumi;
        }
        sum += xb[i].d * fp16_to_f32(wb[i].d) * (float)scaled;
    }
    return sum;
}

#define EACH_ROW(name, row_dot)                                                                    \
    static void name(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows,   \
                     float *out)                                                                   \
    {                                                                                              \
        for (int r = 0; r < n_rows; r++) out[r] = row_dot(n, w, ACT_ROW(act, act_stride, r));     \
    }

EACH_ROW(dot_f16_ref, row_dot_f16)
EACH_ROW(dot_bf16_ref, row_dot_bf16)
EACH_ROW(dot_q8_0_ref, row_dot_q8_0)
EACH_ROW(dot_q4_0_ref, row_dot_q4_0)
EACH_ROW(dot_q4_K_ref, row_dot_q4_K)
EACH_ROW(dot_q6_K_ref, row_dot_q6_K)

const kernels kernels_scalar = {
    .name = "scalar",
    .path = KERNEL_SCALAR,
    .f16 = {f16_to_float_ref, copy_act_f32, dot_f16_ref, FLOAT_ACT},
    .bf16 = {bf16_to_float_ref, copy_act_f32, dot_bf16_ref, FLOAT_ACT},
    .q8_0 = {q8_0_to_float_ref, quantize_act_q8_0, dot_q8_0_ref, Q8_0_ACT},
    .q4_0 = {q4_0_to_float_ref, quantize_act_q8_0, dot_q4_0_ref, Q8_0_ACT},
    .q4_K = {q4_K_to_float_ref, quantize_act_q8_K, dot_q4_K_ref, Q8_K_ACT},
    .q6_K = {q6_K_to_float_ref, quantize_act_q8_K, dot_q6_K_ref, Q8_K_ACT},
};
