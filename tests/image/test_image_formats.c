/* Decoding of files generated here: 16-bit PNGs (grey clamps, colour / grey+alpha keep the high
 * byte, as PIL 9.4), 8-bit PNGs of every channel count (alpha dropped without compositing),
 * BMP, binary PGM/PPM with PIL's maxval rescaling, and JPEG (colour order, grey replication). */
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "check.h"
#include "image/image.h"
#include "image_test_util.h"

static int decode(const byte_buffer *file, const image_options *options, rgb_image *image,
                  const char *what)
{
    error err = {0};
    r2gen_status status = image_decode_memory(file->data, file->size, options, image, &err);
    CHECK(status == R2GEN_OK, "%s: %s", what, err.message);
    return status == R2GEN_OK ? 0 : -1;
}

/* n pixels of `channels` 16-bit samples; expected[i] is the RGB the reference gives pixel i. */
static void check_png16(int colour_type, const uint16_t *samples, int n,
                        const uint8_t *expected, int trns, const image_options *options,
                        const char *what)
{
    byte_buffer png = {0};
    png16_encode(&png, n, 1, colour_type, samples, trns);
    rgb_image image;
    if (decode(&png, options, &image, what) == 0) {
        for (int i = 0; i < n; i++)
            CHECK(!memcmp(image.pixels + 3 * i, expected + 3 * i, 3),
                  "%s pixel %d: %u %u %u, expected %u %u %u", what, i, image.pixels[3 * i],
                  image.pixels[3 * i + 1], image.pixels[3 * i + 2], expected[3 * i],
                  expected[3 * i + 1], expected[3 * i + 2]);
        rgb_image_free(&image);
    }
    byte_buffer_free(&png);
}

static void check_png16_rules(void)
{
    /* RGB: high byte, not rounded (0x12FF -> 0x12) and not clamped. */
    const uint16_t rgb[] = {0x12FF, 0x0080, 0xFF00, 0x00FF, 0x8000, 0xFFFF};
    const uint8_t rgb_expected[] = {0x12, 0x00, 0xFF, 0x00, 0x80, 0xFF};
    check_png16(2, rgb, 2, rgb_expected, -1, NULL, "PNG16 RGB");

    /* RGBA: high byte of the colour; alpha (0 here) dropped without compositing. */
    const uint16_t rgba[] = {0x3456, 0x789A, 0xBCDE, 0x0000, 0x0101, 0x0202, 0x0303, 0xFFFF};
    const uint8_t rgba_expected[] = {0x34, 0x78, 0xBC, 0x01, 0x02, 0x03};
    check_png16(6, rgba, 2, rgba_expected, -1, NULL, "PNG16 RGBA");

    /* Grey+alpha: high byte (PIL opens it as 8-bit LA), replicated. */
    const uint16_t grey_alpha[] = {0x4321, 0x0000, 0x00FF, 0xFFFF};
    const uint8_t grey_alpha_expected[] = {0x43, 0x43, 0x43, 0x00, 0x00, 0x00};
    check_png16(4, grey_alpha, 2, grey_alpha_expected, -1, NULL, "PNG16 grey+alpha");

    /* Grey (mode I): clamped, with or without tRNS. */
    const uint16_t grey[] = {0, 200, 255, 256, 0x4321};
    const uint8_t grey_expected[] = {0, 0, 0, 200, 200, 200, 255, 255, 255,
                                     255, 255, 255, 255, 255, 255};
    check_png16(0, grey, 5, grey_expected, -1, NULL, "PNG16 grey");
    check_png16(0, grey, 5, grey_expected, 200, NULL, "PNG16 grey with tRNS");

    /* Grey through a window c = 128.5, w = 256: ((v - 128) / 255 + 0.5) * 255 + 0.5 = v exactly,
     * a tie for every v in 1..255 that must round up to v; v <= 0.5 -> 0, v > 255.5 -> 255. */
    image_options window = {IMAGE_GRAY16_WINDOW, 128.5, 256.0};
    const uint16_t ramp[] = {0, 1, 77, 254, 255, 256};
    const uint8_t ramp_expected[] = {0, 0, 0, 1, 1, 1, 77, 77, 77, 254, 254, 254,
                                     255, 255, 255, 255, 255, 255};
    check_png16(0, ramp, 6, ramp_expected, -1, &window, "PNG16 grey windowed");
}

static void fill_pattern(uint8_t *pixels, int width, int height, int channels)
{
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            for (int c = 0; c < channels; c++)
                pixels[((size_t)y * width + x) * channels + c] =
                    (uint8_t)(x * 7 + y * 13 + c * 61 + (x * y) % 5);
}

/* What PIL's convert("RGB") gives for one pixel of `channels` 8-bit samples. */
static void expected_rgb(const uint8_t *in, int channels, uint8_t *out)
{
    for (int c = 0; c < 3; c++) out[c] = channels < 3 ? in[0] : in[c];
}

static void check_8bit(int channels, int bmp)
{
    enum { W = 19, H = 11 };
    uint8_t source[W * H * 4];
    fill_pattern(source, W, H, channels);
    byte_buffer file = {0};
    int written = bmp ? stbi_write_bmp_to_func(byte_buffer_write, &file, W, H, channels, source)
                      : stbi_write_png_to_func(byte_buffer_write, &file, W, H, channels, source,
                                               W * channels);
    char what[64];
    snprintf(what, sizeof what, "%s with %d channels", bmp ? "BMP" : "PNG", channels);
    CHECK(written, "%s: stb_image_write failed", what);
    rgb_image image;
    if (written && decode(&file, NULL, &image, what) == 0) {
        int wrong = 0;
        for (int i = 0; i < W * H; i++) {
            uint8_t expect[3];
            expected_rgb(source + i * channels, channels, expect);
            wrong += memcmp(image.pixels + 3 * i, expect, 3) != 0;
        }
        CHECK(image.width == W && image.height == H && wrong == 0, "%s: %d wrong pixels", what,
              wrong);
        rgb_image_free(&image);
    }
    if (bmp && written) { /* cut inside the pixel rows: stb_image would zero-fill */
        error err = {0};
        r2gen_status status = image_decode_memory(file.data, file.size - 5, NULL, &image, &err);
        CHECK(status == R2GEN_ERR_IMAGE, "%s cut short: status %d", what, status);
    }
    byte_buffer_free(&file);
}

/* One PGM/PPM case: samples behind a header, and the RGB PIL 9.4 gives for them. */
typedef struct pnm_case {
    const char *what, *header;
    int maxval, n_samples;
    uint16_t samples[8];
    uint8_t expected[12];
} pnm_case;

static const pnm_case pnm_cases[] = {
    /* 8-bit grey, a comment in the header: replicated as is. */
    {"PGM 8-bit", "P5\n# made by a test\n2 2\n255\n", 255, 4, {0, 17, 128, 255},
     {0, 0, 0, 17, 17, 17, 128, 128, 128, 255, 255, 255}},
    /* maxval 15: PIL rescales to 0..255, v * 17. */
    {"PGM maxval 15", "P5 4 1 15\n", 15, 4, {0, 1, 15, 8},
     {0, 0, 0, 17, 17, 17, 255, 255, 255, 136, 136, 136}},
    /* 16-bit grey, maxval 65535: mode I as is, then clamped. */
    {"PGM 16-bit", "P5\n4 1\n65535\n", 65535, 4, {0x0010, 0x00FF, 0x0100, 0xABCD},
     {16, 16, 16, 255, 255, 255, 255, 255, 255, 255, 255, 255}},
    /* maxval 1000: rescaled to 0..65535 first (round(v / 1000 * 65535)), then clamped:
     * 1 -> 65.535 -> 66, 3 -> 196.605 -> 197, 4 -> 262.14 -> 255. */
    {"PGM maxval 1000", "P5 4 1 1000\n", 1000, 4, {0, 1, 3, 4},
     {0, 0, 0, 66, 66, 66, 197, 197, 197, 255, 255, 255}},
    /* 16-bit RGB: PIL rescales to 8 bits, round(v / 65535 * 255): 257 k -> k,
     * 128 -> 0.498 -> 0, 129 -> 0.502 -> 1. */
    {"PPM 16-bit", "P6 2 1 65535\n", 65535, 6, {257 * 3, 128, 129, 65535, 257 * 200, 0},
     {3, 0, 1, 255, 200, 0}},
};

static void check_pnm(const pnm_case *c)
{
    byte_buffer file = {0};
    byte_buffer_append(&file, c->header, strlen(c->header));
    for (int i = 0; i < c->n_samples; i++) { /* big-endian when maxval > 255 */
        uint8_t be[2] = {(uint8_t)(c->samples[i] >> 8), (uint8_t)c->samples[i]};
        byte_buffer_append(&file, c->maxval > 255 ? be : be + 1, c->maxval > 255 ? 2 : 1);
    }
    /* P5 has one sample per pixel, P6 three. */
    const int n_out = c->header[1] == '5' ? 3 * c->n_samples : c->n_samples;
    rgb_image image;
    if (decode(&file, NULL, &image, c->what) == 0) {
        CHECK(image.width * image.height * 3 == n_out, "%s: %dx%d", c->what, image.width,
              image.height);
        for (int i = 0; i < n_out && i < image.width * image.height * 3; i++)
            CHECK(image.pixels[i] == c->expected[i], "%s sample %d: %u, expected %u", c->what, i,
                  image.pixels[i], c->expected[i]);
        rgb_image_free(&image);
    }
    error err = {0};
    CHECK(image_decode_memory(file.data, file.size - 1, NULL, &image, &err) == R2GEN_ERR_IMAGE,
          "%s cut short: %s", c->what, err.message);
    byte_buffer_free(&file);
}

static void check_jpeg(int channels)
{
    enum { W = 64, H = 48 };
    uint8_t source[W * H * 3];
    for (int y = 0; y < H; y++) /* smooth: red across, blue down, green constant */
        for (int x = 0; x < W; x++)
            for (int c = 0; c < channels; c++)
                source[(y * W + x) * channels + c] =
                    (uint8_t)(c == 0 ? 30 + 3 * x : c == 1 ? 120 : 20 + 4 * y);
    byte_buffer file = {0};
    CHECK(stbi_write_jpg_to_func(byte_buffer_write, &file, W, H, channels, source, 95),
          "stb_image_write could not write a JPEG");
    rgb_image image;
    char what[32];
    snprintf(what, sizeof what, "JPEG with %d channels", channels);
    if (file.size && decode(&file, NULL, &image, what) == 0) {
        int worst = 0, grey = 1;
        for (int i = 0; i < W * H; i++)
            for (int c = 0; c < 3; c++) {
                int d = image.pixels[3 * i + c] - source[i * channels + (channels == 1 ? 0 : c)];
                if (d < 0) d = -d;
                if (d > worst) worst = d;
                if (image.pixels[3 * i + c] != image.pixels[3 * i]) grey = 0;
            }
        CHECK(worst <= 6, "%s: differs from the source by up to %d levels", what, worst);
        CHECK(grey == (channels == 1), "%s: grey replication %d", what, grey);
        rgb_image_free(&image);
    }
    byte_buffer_free(&file);
}

int main(void)
{
    check_png16_rules();
    for (int channels = 1; channels <= 4; channels++) check_8bit(channels, 0);
    check_8bit(3, 1);
    check_8bit(4, 1);
    for (size_t i = 0; i < sizeof pnm_cases / sizeof pnm_cases[0]; i++) check_pnm(&pnm_cases[i]);
    check_jpeg(3);
    check_jpeg(1);
    return check_summary();
}
