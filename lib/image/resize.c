/* Pillow's BICUBIC resize, 8-bit path (libImaging/Resample.c semantics), bit-exact:
 * per axis, every output position gets a window of input positions and cubic (a = -0.5) weights,
 * stretched by the scale when shrinking (anti-aliasing), normalised to sum 1 and rounded to 22-bit
 * fixed point. The horizontal pass runs first and is stored as clamped uint8; the vertical pass
 * reads that. A pass whose size does not change is skipped. The weights are computed once per
 * axis; the per-pixel work is integer only. */
#include "image/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS 22 /* Pillow: 32 - 8 - 2 for 8-bit samples */
#define BICUBIC_SUPPORT 2.0

typedef struct resample_axis {
    int out_size;
    int ksize;        /* weights stored per output position (room for the widest window) */
    int *first;       /* first input position of each output position's window */
    int *count;       /* its length */
    int32_t *weights; /* out_size x ksize, fixed point */
} resample_axis;

static double bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static void axis_free(resample_axis *axis)
{
    free(axis->first);
    free(axis->count);
    free(axis->weights);
    memset(axis, 0, sizeof *axis);
}

static r2gen_status axis_init(resample_axis *axis, int in_size, int out_size, error *err)
{
    memset(axis, 0, sizeof *axis);
    double scale = (double)in_size / out_size;
    double filter_scale = scale < 1.0 ? 1.0 : scale;
    double support = BICUBIC_SUPPORT * filter_scale;
    int ksize = (int)ceil(support) * 2 + 1;
    axis->out_size = out_size;
    axis->ksize = ksize;
    axis->first = malloc(sizeof(int) * out_size);
    axis->count = malloc(sizeof(int) * out_size);
    axis->weights = malloc(sizeof(int32_t) * out_size * ksize);
    double *window = malloc(sizeof(double) * ksize);
    if (!axis->first || !axis->count || !axis->weights || !window) {
        free(window);
        axis_free(axis);
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for resize weights");
    }
    const double inv_filter_scale = 1.0 / filter_scale;
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        int xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        int n = xmax - xmin;
        double total = 0.0;
        for (int x = 0; x < n; x++) {
            window[x] = bicubic((x + xmin - center + 0.5) * inv_filter_scale);
            total += window[x];
        }
        int32_t *k = axis->weights + (size_t)i * ksize;
        for (int x = 0; x < n; x++) {
            double w = total != 0.0 ? window[x] / total : window[x];
            /* rounding away from zero, then truncation toward zero, as Pillow */
            k[x] = (int32_t)(w < 0 ? -0.5 + w * (1 << PRECISION_BITS)
                                   : 0.5 + w * (1 << PRECISION_BITS));
        }
        axis->first[i] = xmin;
        axis->count[i] = n;
    }
    free(window);
    return R2GEN_OK;
}

/* acc holds 2^21 + sum(k * p): round half up, then clamp to 0..255. */
static inline uint8_t clip8(int32_t acc)
{
    if (acc <= 0) return 0;
    acc >>= PRECISION_BITS;
    return acc > 255 ? 255 : (uint8_t)acc;
}

/* n_rows rows of in_width pixels of `channels` interleaved samples -> rows of axis->out_size. */
static void resample_horizontal(const uint8_t *in, int in_width, int n_rows, int channels,
                                const resample_axis *axis, uint8_t *out)
{
    const int out_width = axis->out_size;
    for (int y = 0; y < n_rows; y++) {
        const uint8_t *src = in + (size_t)y * in_width * channels;
        uint8_t *dst = out + (size_t)y * out_width * channels;
        for (int i = 0; i < out_width; i++) {
            const int32_t *k = axis->weights + (size_t)i * axis->ksize;
            const int n = axis->count[i];
            for (int c = 0; c < channels; c++) {
                const uint8_t *p = src + (size_t)axis->first[i] * channels + c;
                int32_t acc = 1 << (PRECISION_BITS - 1);
                for (int t = 0; t < n; t++) acc += p[t * channels] * k[t];
                dst[i * channels + c] = clip8(acc);
            }
        }
    }
}

/* Rows of row_bytes samples (row 0 = input position `row_offset`) -> axis->out_size rows.
 * Sums are exact integers, so accumulating a whole row tap by tap gives Pillow's result. */
static void resample_vertical(const uint8_t *in, size_t row_bytes, int row_offset,
                              const resample_axis *axis, int32_t *acc, uint8_t *out)
{
    for (int i = 0; i < axis->out_size; i++) {
        const int32_t *k = axis->weights + (size_t)i * axis->ksize;
        const uint8_t *src = in + (size_t)(axis->first[i] - row_offset) * row_bytes;
        for (size_t x = 0; x < row_bytes; x++) acc[x] = 1 << (PRECISION_BITS - 1);
        for (int t = 0; t < axis->count[i]; t++, src += row_bytes)
            for (size_t x = 0; x < row_bytes; x++) acc[x] += src[x] * k[t];
        uint8_t *dst = out + (size_t)i * row_bytes;
        for (size_t x = 0; x < row_bytes; x++) dst[x] = clip8(acc[x]);
    }
}

/* An image as interleaved 8-bit samples: `channels` per pixel. */
typedef struct sample_image {
    uint8_t *data;
    int width, height, channels;
} sample_image;

/* Both passes, or one of them when the other axis is NULL (its size does not change). */
static r2gen_status resample(const sample_image *in, const resample_axis *horizontal,
                             const resample_axis *vertical, sample_image *out, error *err)
{
    const int channels = in->channels;
    if (!vertical) {
        resample_horizontal(in->data, in->width, in->height, channels, horizontal, out->data);
        return R2GEN_OK;
    }
    /* Only the input rows some output row reads go through the horizontal pass. */
    const int last = vertical->out_size - 1;
    const int first_row = vertical->first[0];
    const int n_rows = vertical->first[last] + vertical->count[last] - first_row;
    const size_t out_row_bytes = (size_t)out->width * channels;
    uint8_t *rows = NULL; /* horizontal pass output */
    int32_t *acc = malloc(sizeof(int32_t) * out_row_bytes);
    if (horizontal) rows = malloc((size_t)n_rows * out_row_bytes);
    if (!acc || (horizontal && !rows)) {
        free(acc);
        free(rows);
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory resizing to %dx%d",
                         out->width, out->height);
    }
    if (horizontal) {
        resample_horizontal(in->data + (size_t)first_row * in->width * channels, in->width,
                            n_rows, channels, horizontal, rows);
        resample_vertical(rows, out_row_bytes, first_row, vertical, acc, out->data);
    } else {
        resample_vertical(in->data, out_row_bytes, 0, vertical, acc, out->data);
    }
    free(acc);
    free(rows);
    return R2GEN_OK;
}

/* 1 when R == G == B everywhere (stops at the first colour pixel). */
static int is_grey(const rgb_image *image)
{
    const size_t n = (size_t)image->width * image->height;
    const uint8_t *p = image->pixels;
    for (size_t i = 0; i < n; i++, p += 3)
        if (p[0] != p[1] || p[0] != p[2]) return 0;
    return 1;
}

/* Channels are resampled independently, so a grey image (X-rays, replicated on decoding) is
 * resampled once as a single plane and replicated again: a third of the work. */
static r2gen_status resample_rgb(const rgb_image *in, const resample_axis *horizontal,
                                 const resample_axis *vertical, rgb_image *out, error *err)
{
    if (!is_grey(in)) {
        sample_image src = {in->pixels, in->width, in->height, 3};
        sample_image dst = {out->pixels, out->width, out->height, 3};
        return resample(&src, horizontal, vertical, &dst, err);
    }
    const size_t n_in = (size_t)in->width * in->height, n_out = (size_t)out->width * out->height;
    sample_image src = {malloc(n_in), in->width, in->height, 1};
    sample_image dst = {malloc(n_out), out->width, out->height, 1};
    r2gen_status status = R2GEN_OK;
    if (!src.data || !dst.data)
        status = error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory resizing to %dx%d",
                           out->width, out->height);
    if (status == R2GEN_OK) {
        for (size_t i = 0; i < n_in; i++) src.data[i] = in->pixels[3 * i];
        status = resample(&src, horizontal, vertical, &dst, err);
    }
    if (status == R2GEN_OK)
        for (size_t i = 0; i < n_out; i++)
            out->pixels[3 * i] = out->pixels[3 * i + 1] = out->pixels[3 * i + 2] = dst.data[i];
    free(src.data);
    free(dst.data);
    return status;
}

r2gen_status image_resize_bicubic(const rgb_image *in, int out_width, int out_height,
                                  rgb_image *out, error *err)
{
    if (!out) return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "resize: NULL output image");
    memset(out, 0, sizeof *out);
    if (!in || !in->pixels)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "resize: NULL input image");
    r2gen_status status = image_check_size(in->width, in->height, R2GEN_ERR_INVALID_ARGUMENT,
                                           "resize input", err);
    if (status == R2GEN_OK)
        status = image_check_size(out_width, out_height, R2GEN_ERR_INVALID_ARGUMENT,
                                  "resize output", err);
    if (status == R2GEN_OK) status = rgb_image_alloc(out, out_width, out_height, err);
    if (status != R2GEN_OK) return status;

    const int need_horizontal = out_width != in->width;
    const int need_vertical = out_height != in->height;
    if (!need_horizontal && !need_vertical) {
        memcpy(out->pixels, in->pixels, (size_t)out_width * out_height * 3);
        return R2GEN_OK;
    }
    resample_axis horizontal = {0}, vertical = {0};
    if (need_horizontal) status = axis_init(&horizontal, in->width, out_width, err);
    if (status == R2GEN_OK && need_vertical)
        status = axis_init(&vertical, in->height, out_height, err);
    if (status == R2GEN_OK)
        status = resample_rgb(in, need_horizontal ? &horizontal : NULL,
                              need_vertical ? &vertical : NULL, out, err);
    axis_free(&horizontal);
    axis_free(&vertical);
    if (status != R2GEN_OK) rgb_image_free(out);
    return status;
}
