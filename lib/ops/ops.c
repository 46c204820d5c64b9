#include "ops.h"

#include <math.h>

/* Row statistics are accumulated in double: the reference sums in float32 with a different
 * order, and double keeps us within rounding of either order. */
void layer_norm(float *out, const float *x, int64_t rows, int64_t n, const float *weight,
                const float *bias, float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * n;
        float *dst = out + r * n;
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) sum += row[i];
        double mean = sum / (double)n;
        double var = 0.0;
        for (int64_t i = 0; i < n; i++) {
            double d = row[i] - mean;
            var += d * d;
        }
        float inv_std = (float)(1.0 / sqrt(var / (double)n + eps));
        float mean_f = (float)mean;
        for (int64_t i = 0; i < n; i++) {
            float v = (row[i] - mean_f) * inv_std;
            dst[i] = v * weight[i] + (bias ? bias[i] : 0.0f);
        }
    }
}

void rms_norm(float *out, const float *x, int64_t rows, int64_t n, const float *weight, float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * n;
        float *dst = out + r * n;
        double sum_sq = 0.0;
        for (int64_t i = 0; i < n; i++) sum_sq += (double)row[i] * row[i];
        float scale = (float)(1.0 / sqrt(sum_sq / (double)n + eps));
        for (int64_t i = 0; i < n; i++) dst[i] = weight[i] * (row[i] * scale);
    }
}

void gelu_erf(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void silu_mul(float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void softmax(float *x, int64_t n)
{
    float max = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void log_softmax(float *x, int64_t n)
{
    float max = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += exp((double)(x[i] - max));
    float log_sum = (float)log(sum);
    for (int64_t i = 0; i < n; i++) x[i] = (x[i] - max) - log_sum;
}

void add(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}
