/* RGB image buffers, size limits, sample tables (PIL's conversions to 8 bits) and caller pixels. */
#include "image/image_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

r2gen_status image_check_size(int64_t width, int64_t height, r2gen_status status, const char *what,
                              error *err)
{
    if (width <= 0 || height <= 0)
        return error_set(err, status, "%s: invalid size %lldx%lld", what, (long long)width,
                         (long long)height);
    if (width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE)
        return error_set(err, status, "%s: %lldx%lld is larger than the limit of %d pixels a side",
                         what, (long long)width, (long long)height, IMAGE_MAX_SIDE);
    if (width * height > IMAGE_MAX_PIXELS)
        return error_set(err, status, "%s: %lldx%lld has more than the limit of %lld pixels", what,
                         (long long)width, (long long)height, (long long)IMAGE_MAX_PIXELS);
    return R2GEN_OK;
}

r2gen_status rgb_image_alloc(rgb_image *image, int width, int height, error *err)
{
    image->pixels = malloc((size_t)width * (size_t)height * 3);
    if (!image->pixels) {
        image->width = image->height = 0;
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for a %dx%d RGB image",
                         width, height);
    }
    image->width = width;
    image->height = height;
    return R2GEN_OK;
}

void rgb_image_free(rgb_image *image)
{
    if (!image) return;
    free(image->pixels);
    image->pixels = NULL;
    image->width = image->height = 0;
}

r2gen_status image_options_resolve(const image_options *options, image_options *resolved,
                                   error *err)
{
    memset(resolved, 0, sizeof *resolved);
    resolved->gray16 = IMAGE_GRAY16_CLAMP;
    if (!options) return R2GEN_OK;
    switch (options->gray16) {
    case IMAGE_GRAY16_CLAMP:
    case IMAGE_GRAY16_MINMAX:
        break;
    case IMAGE_GRAY16_WINDOW:
        if (!isfinite(options->window_center) || !isfinite(options->window_width) ||
            options->window_width < 1.0)
            return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                             "16-bit window: centre must be finite and width >= 1 (got %g, %g)",
                             options->window_center, options->window_width);
        break;
    default:
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "unknown 16-bit grey mapping %d",
                         (int)options->gray16);
    }
    *resolved = *options;
    return R2GEN_OK;
}

void sample_table_identity(uint8_t *table)
{
    for (int v = 0; v < 256; v++) table[v] = (uint8_t)v;
}

void sample_table_high_byte(uint8_t *table)
{
    for (int v = 0; v < SAMPLE_TABLE_SIZE; v++) table[v] = (uint8_t)(v >> 8);
}

static double round_half_even(double x)
{
    double low = floor(x);
    double frac = x - low;
    if (frac > 0.5) return low + 1;
    if (frac < 0.5) return low;
    return fmod(low, 2.0) == 0.0 ? low : low + 1;
}

int pnm_rescale(int v, int maxval, int out_max)
{
    double scaled = round_half_even((double)v / maxval * out_max);
    return scaled > out_max ? out_max : (int)scaled;
}

static inline unsigned sample_value(const uint8_t *p, int bytes, int big_endian)
{
    if (bytes == 1) return p[0];
    if (big_endian) return (unsigned)p[0] << 8 | p[1];
    uint16_t v;
    memcpy(&v, p, sizeof v); /* caller pixels need not be 2-byte aligned */
    return v;
}

/* Smallest and largest channel-0 sample. */
static void grey_range(const sample_rows *rows, unsigned *lo, unsigned *hi)
{
    unsigned min = 65535, max = 0;
    size_t pixel_bytes = (size_t)rows->channels * rows->bytes;
    for (int y = 0; y < rows->height; y++) {
        const uint8_t *row = rows->data + (size_t)y * rows->stride;
        for (int x = 0; x < rows->width; x++) {
            unsigned v = sample_value(row + x * pixel_bytes, rows->bytes, rows->big_endian);
            if (v < min) min = v;
            if (v > max) max = v;
        }
    }
    *lo = min;
    *hi = max;
}

static uint8_t window_value(double v, double center, double width)
{
    if (v <= center - 0.5 - (width - 1) / 2) return 0;
    if (v > center - 0.5 + (width - 1) / 2) return 255;
    /* ((v - (c - 0.5)) / (w - 1) + 0.5) * 255 + 0.5 rearranged so that, for integer or half-integer
     * c and w, the only rounding is one division: exact ties really round up. */
    double y = floor((v - center + 0.5) * 255 / (width - 1) + 128);
    return y <= 0 ? 0 : y >= 255 ? 255 : (uint8_t)y;
}

static uint8_t minmax_value(unsigned v, unsigned lo, unsigned hi)
{
    if (hi == lo || v <= lo) return 0;
    if (v >= hi) return 255;
    uint64_t range = hi - lo;
    return (uint8_t)(((uint64_t)(v - lo) * 255 * 2 + range) / (2 * range));
}

void sample_table_gray16(const image_options *options, const sample_rows *rows, int pnm_maxval,
                         uint8_t *table)
{
    int rescale = pnm_maxval > 0 && pnm_maxval < 65535;
    unsigned lo = 0, hi = 0;
    if (options->gray16 == IMAGE_GRAY16_MINMAX) {
        grey_range(rows, &lo, &hi);
        if (rescale) { /* rescaling is monotonic: the range of the rescaled samples */
            lo = (unsigned)pnm_rescale((int)lo, pnm_maxval, 65535);
            hi = (unsigned)pnm_rescale((int)hi, pnm_maxval, 65535);
        }
    }
    for (int raw = 0; raw < SAMPLE_TABLE_SIZE; raw++) {
        int v = rescale ? pnm_rescale(raw, pnm_maxval, 65535) : raw;
        switch (options->gray16) {
        case IMAGE_GRAY16_WINDOW:
            table[raw] = window_value(v, options->window_center, options->window_width);
            break;
        case IMAGE_GRAY16_MINMAX:
            table[raw] = minmax_value((unsigned)v, lo, hi);
            break;
        default:
            table[raw] = (uint8_t)(v > 255 ? 255 : v);
            break;
        }
    }
}

r2gen_status samples_to_rgb(const sample_rows *rows, const uint8_t *table, rgb_image *out,
                            error *err)
{
    r2gen_status status = rgb_image_alloc(out, rows->width, rows->height, err);
    if (status != R2GEN_OK) return status;
    const int bytes = rows->bytes, big_endian = rows->big_endian;
    const size_t pixel_bytes = (size_t)rows->channels * bytes;
    for (int y = 0; y < rows->height; y++) {
        const uint8_t *src = rows->data + (size_t)y * rows->stride;
        uint8_t *dst = out->pixels + (size_t)y * rows->width * 3;
        if (rows->channels < 3) { /* grey, grey+alpha */
            for (int x = 0; x < rows->width; x++, src += pixel_bytes, dst += 3)
                dst[0] = dst[1] = dst[2] = table[sample_value(src, bytes, big_endian)];
        } else { /* RGB, RGBA */
            for (int x = 0; x < rows->width; x++, src += pixel_bytes, dst += 3)
                for (int c = 0; c < 3; c++)
                    dst[c] = table[sample_value(src + c * bytes, bytes, big_endian)];
        }
    }
    return R2GEN_OK;
}

static const struct raw_layout {
    int channels, bytes;
    const char *name;
} raw_layouts[] = {
    [IMAGE_GRAY8] = {1, 1, "gray8"},
    [IMAGE_GRAY16] = {1, 2, "gray16"},
    [IMAGE_RGB8] = {3, 1, "rgb8"},
    [IMAGE_RGBA8] = {4, 1, "rgba8"},
};

r2gen_status image_from_raw(image_pixel_format format, int width, int height,
                            ptrdiff_t stride_bytes, const void *pixels,
                            const image_options *options, rgb_image *out, error *err)
{
    if (!out) return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "raw pixels: NULL output image");
    memset(out, 0, sizeof *out);
    if ((unsigned)format >= sizeof raw_layouts / sizeof raw_layouts[0])
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "raw pixels: unknown pixel format %d",
                         (int)format);
    if (!pixels) return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "raw pixels: NULL pixel pointer");
    const struct raw_layout *layout = &raw_layouts[format];
    r2gen_status status = image_check_size(width, height, R2GEN_ERR_INVALID_ARGUMENT,
                                           "raw pixels", err);
    if (status != R2GEN_OK) return status;
    /* width <= IMAGE_MAX_SIDE keeps row_bytes small; stride * (height - 1) must fit an offset. */
    ptrdiff_t row_bytes = (ptrdiff_t)width * layout->channels * layout->bytes;
    ptrdiff_t stride = stride_bytes == 0 ? row_bytes : stride_bytes;
    if (stride < row_bytes)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                         "raw pixels: stride %td is smaller than a %s row of %d pixels (%td bytes)",
                         stride_bytes, layout->name, width, row_bytes);
    if (height > 1 && stride > (PTRDIFF_MAX - row_bytes) / (height - 1))
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                         "raw pixels: stride %td x %d rows overflows the address range", stride,
                         height);
    image_options resolved;
    status = image_options_resolve(options, &resolved, err);
    if (status != R2GEN_OK) return status;

    uint8_t *table = malloc(SAMPLE_TABLE_SIZE);
    if (!table) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for a sample table");
    sample_rows rows = {pixels, (size_t)stride, width, height, layout->channels, layout->bytes, 0};
    if (format == IMAGE_GRAY16)
        sample_table_gray16(&resolved, &rows, 0, table);
    else
        sample_table_identity(table);
    status = samples_to_rgb(&rows, table, out, err);
    free(table);
    return status;
}
