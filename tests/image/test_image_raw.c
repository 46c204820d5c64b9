/* Caller pixels (image_from_raw): every format with padded, unaligned rows gives the same RGB as
 * tightly packed rows; grey replication, alpha dropping, and the 16-bit grey mappings (clamp,
 * DICOM window, min-max) at hand-computed points. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "image/image.h"
#include "image_test_util.h"

enum { W = 37, H = 23 };

static const int format_bytes[] = {
    [IMAGE_GRAY8] = 1, [IMAGE_GRAY16] = 2, [IMAGE_RGB8] = 3, [IMAGE_RGBA8] = 4};
static const char *format_names[] = {
    [IMAGE_GRAY8] = "gray8", [IMAGE_GRAY16] = "gray16", [IMAGE_RGB8] = "rgb8",
    [IMAGE_RGBA8] = "rgba8"};

/* Tightly packed vs. rows `pad` bytes apart starting at an odd address. */
static void check_strides(image_pixel_format format, uint32_t *seed)
{
    const size_t row = (size_t)W * format_bytes[format];
    uint8_t *tight = malloc(row * H);
    for (size_t i = 0; i < row * H; i++) tight[i] = (uint8_t)test_random(seed);
    const size_t pad = 13, stride = row + pad;
    uint8_t *padded_block = malloc(stride * H + 1);
    uint8_t *padded = padded_block + 1;
    for (int y = 0; y < H; y++) {
        memcpy(padded + y * stride, tight + y * row, row);
        memset(padded + y * stride + row, 0xA5, pad);
    }
    error err = {0};
    rgb_image a, b;
    r2gen_status sa = image_from_raw(format, W, H, 0, tight, NULL, &a, &err);
    r2gen_status sb = image_from_raw(format, W, H, (ptrdiff_t)stride, padded, NULL, &b, &err);
    CHECK(sa == R2GEN_OK && sb == R2GEN_OK, "%s: %s", format_names[format], err.message);
    if (sa == R2GEN_OK && sb == R2GEN_OK) {
        CHECK(a.width == W && a.height == H, "%s: size %dx%d", format_names[format], a.width,
              a.height);
        CHECK(!memcmp(a.pixels, b.pixels, (size_t)W * H * 3), "%s: padded stride differs",
              format_names[format]);
        /* Stride given explicitly as the row size is the same as 0. */
        rgb_image c;
        CHECK(image_from_raw(format, W, H, (ptrdiff_t)row, tight, NULL, &c, &err) == R2GEN_OK &&
                  !memcmp(a.pixels, c.pixels, (size_t)W * H * 3),
              "%s: explicit tight stride differs", format_names[format]);
        rgb_image_free(&c);
        /* Per-format meaning of the samples. */
        int wrong = 0;
        for (int i = 0; i < W * H; i++) {
            const uint8_t *in = tight + (size_t)i * format_bytes[format];
            const uint8_t *out = a.pixels + 3 * i;
            switch (format) {
            case IMAGE_GRAY8: wrong += out[0] != in[0] || out[1] != in[0] || out[2] != in[0]; break;
            case IMAGE_GRAY16: {
                uint16_t g16;
                memcpy(&g16, in, 2);
                uint8_t expect = g16 > 255 ? 255 : (uint8_t)g16;
                wrong += out[0] != expect || out[1] != expect || out[2] != expect;
                break;
            }
            default: wrong += memcmp(out, in, 3) != 0; break; /* RGB kept, alpha dropped */
            }
        }
        CHECK(wrong == 0, "%s: %d pixels converted wrongly", format_names[format], wrong);
    }
    rgb_image_free(&a);
    rgb_image_free(&b);
    free(tight);
    free(padded_block);
}

/* One row of 16-bit grey values through a mapping; returns the R channel of each. */
static int map_gray16(const uint16_t *values, int n, const image_options *options, uint8_t *out)
{
    error err = {0};
    rgb_image image;
    if (image_from_raw(IMAGE_GRAY16, n, 1, 0, values, options, &image, &err) != R2GEN_OK) {
        CHECK(0, "gray16 mapping: %s", err.message);
        return -1;
    }
    for (int i = 0; i < n; i++) out[i] = image.pixels[3 * i];
    rgb_image_free(&image);
    return 0;
}

static void check_gray16_mappings(void)
{
    /* Clamp (the reference): no scaling. */
    const uint16_t clamp_in[] = {0, 1, 254, 255, 256, 1000, 65535};
    const uint8_t clamp_out[] = {0, 1, 254, 255, 255, 255, 255};
    uint8_t got[8];
    if (map_gray16(clamp_in, 7, NULL, got) == 0)
        for (int i = 0; i < 7; i++)
            CHECK(got[i] == clamp_out[i], "clamp(%u) = %u", clamp_in[i], got[i]);

    /* DICOM window c = 1000, w = 201: v <= 899.5 -> 0, v > 1099.5 -> 255, in between
     * floor(((v - 999.5) / 200 + 0.5) * 255 + 0.5): 900 -> floor(1.1375) = 1,
     * 1000 -> floor(128.6375) = 128, 1099 -> floor(254.8625) = 254. */
    image_options window = {IMAGE_GRAY16_WINDOW, 1000.0, 201.0};
    const uint16_t window_in[] = {0, 899, 900, 1000, 1099, 1100, 65535};
    const uint8_t window_out[] = {0, 0, 1, 128, 254, 255, 255};
    if (map_gray16(window_in, 7, &window, got) == 0)
        for (int i = 0; i < 7; i++)
            CHECK(got[i] == window_out[i], "window(%u) = %u, expected %u", window_in[i], got[i],
                  window_out[i]);

    /* Width 1 is a threshold at c - 0.5: v = 50 -> 255, v = 49 -> 0 for c = 50. */
    image_options threshold = {IMAGE_GRAY16_WINDOW, 50.0, 1.0};
    const uint16_t threshold_in[] = {49, 50};
    if (map_gray16(threshold_in, 2, &threshold, got) == 0)
        CHECK(got[0] == 0 && got[1] == 255, "threshold window gives %u %u", got[0], got[1]);

    /* Min-max over [100, 1100]: (v - 100) * 255 / 1000 rounded half up:
     * 200 -> 25.5 -> 26, 300 -> 51, 600 -> 127.5 -> 128, 1100 -> 255. */
    image_options minmax = {IMAGE_GRAY16_MINMAX, 0, 0};
    const uint16_t minmax_in[] = {100, 200, 300, 600, 1100};
    const uint8_t minmax_out[] = {0, 26, 51, 128, 255};
    if (map_gray16(minmax_in, 5, &minmax, got) == 0)
        for (int i = 0; i < 5; i++)
            CHECK(got[i] == minmax_out[i], "minmax(%u) = %u, expected %u", minmax_in[i], got[i],
                  minmax_out[i]);

    /* A flat image maps to 0 under min-max. */
    const uint16_t flat[] = {700, 700, 700};
    if (map_gray16(flat, 3, &minmax, got) == 0)
        CHECK(got[0] == 0 && got[1] == 0 && got[2] == 0, "flat min-max gives %u", got[0]);

    /* The mappings apply to 16-bit grey only: 8-bit grey is unchanged by them. */
    const uint8_t grey8[] = {3, 200};
    rgb_image image;
    error err = {0};
    if (image_from_raw(IMAGE_GRAY8, 2, 1, 0, grey8, &window, &image, &err) == R2GEN_OK) {
        CHECK(image.pixels[0] == 3 && image.pixels[3] == 200, "window changed 8-bit grey");
        rgb_image_free(&image);
    }
}

int main(void)
{
    uint32_t seed = 12345;
    check_strides(IMAGE_GRAY8, &seed);
    check_strides(IMAGE_GRAY16, &seed);
    check_strides(IMAGE_RGB8, &seed);
    check_strides(IMAGE_RGBA8, &seed);
    check_gray16_mappings();
    return check_summary();
}
