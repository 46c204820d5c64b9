/* Properties of the bicubic resize beyond the fixture sizes: the two-pass result equals the
 * horizontal-only resize followed by the vertical-only one (Pillow skips a pass whose size does
 * not change); the single-plane path taken for grey images equals the general RGB path; flat
 * images stay flat when up- or down-sampled; the same size is a copy. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "image/image.h"
#include "image_test_util.h"

static rgb_image random_image(int width, int height, int grey, uint32_t *seed)
{
    rgb_image image;
    error err = {0};
    if (rgb_image_alloc(&image, width, height, &err) != R2GEN_OK) exit(1);
    for (size_t i = 0; i < (size_t)width * height; i++) {
        /* smooth ramp plus noise, so both flat and busy regions occur */
        uint8_t base = (uint8_t)((i % width) * 180 / width + test_random(seed) % 64);
        for (int c = 0; c < 3; c++)
            image.pixels[3 * i + c] = grey ? base : (uint8_t)(base + c * 50 + test_random(seed) % 9);
    }
    return image;
}

static int resize(const rgb_image *in, int width, int height, rgb_image *out)
{
    error err = {0};
    r2gen_status status = image_resize_bicubic(in, width, height, out, &err);
    CHECK(status == R2GEN_OK, "resize %dx%d -> %dx%d: %s", in->width, in->height, width, height,
          err.message);
    return status == R2GEN_OK ? 0 : -1;
}

static void check_composition(int in_w, int in_h, int out_w, int out_h, uint32_t *seed)
{
    rgb_image in = random_image(in_w, in_h, 0, seed), direct, wide, both;
    if (resize(&in, out_w, out_h, &direct) == 0 && resize(&in, out_w, in_h, &wide) == 0) {
        if (resize(&wide, out_w, out_h, &both) == 0) {
            CHECK(!memcmp(direct.pixels, both.pixels, (size_t)out_w * out_h * 3),
                  "%dx%d -> %dx%d differs from horizontal then vertical", in_w, in_h, out_w,
                  out_h);
            rgb_image_free(&both);
        }
        rgb_image_free(&wide);
        rgb_image_free(&direct);
    }
    rgb_image_free(&in);
}

static void check_grey_path(int in_w, int in_h, int out_w, int out_h, uint32_t *seed)
{
    rgb_image grey = random_image(in_w, in_h, 1, seed), colour, a, b;
    rgb_image_alloc(&colour, in_w, in_h, &(error){0});
    memcpy(colour.pixels, grey.pixels, (size_t)in_w * in_h * 3);
    colour.pixels[1] ^= 1; /* one green sample: no longer grey, R and B planes unchanged */
    if (resize(&grey, out_w, out_h, &a) == 0 && resize(&colour, out_w, out_h, &b) == 0) {
        int wrong = 0;
        for (size_t i = 0; i < (size_t)out_w * out_h; i++)
            wrong += a.pixels[3 * i] != b.pixels[3 * i] || a.pixels[3 * i + 2] != b.pixels[3 * i + 2] ||
                     a.pixels[3 * i] != a.pixels[3 * i + 1];
        CHECK(wrong == 0, "%dx%d -> %dx%d: grey path differs from the RGB path at %d pixels",
              in_w, in_h, out_w, out_h, wrong);
        rgb_image_free(&a);
        rgb_image_free(&b);
    }
    rgb_image_free(&grey);
    rgb_image_free(&colour);
}

static void check_flat(int in_w, int in_h, int out_w, int out_h)
{
    const uint8_t levels[] = {0, 1, 128, 200, 254, 255};
    for (int l = 0; l < 6; l++) {
        rgb_image in, out;
        rgb_image_alloc(&in, in_w, in_h, &(error){0});
        /* green = 255 - level differs from red and blue: the RGB path */
        for (size_t i = 0; i < (size_t)in_w * in_h * 3; i++)
            in.pixels[i] = i % 3 == 1 ? (uint8_t)(255 - levels[l]) : levels[l];
        if (resize(&in, out_w, out_h, &out) == 0) {
            int wrong = 0;
            for (size_t i = 0; i < (size_t)out_w * out_h * 3; i++)
                wrong += out.pixels[i] != (i % 3 == 1 ? 255 - levels[l] : levels[l]);
            CHECK(wrong == 0, "flat %u: %dx%d -> %dx%d changed %d samples", levels[l], in_w, in_h,
                  out_w, out_h, wrong);
            rgb_image_free(&out);
        }
        rgb_image_free(&in);
    }
}

int main(void)
{
    uint32_t seed = 77;
    const int sizes[][4] = {{311, 257, 224, 224}, {97, 61, 224, 224}, {500, 130, 224, 224},
                            {2, 3, 224, 224},     {1000, 900, 224, 224}, {224, 50, 224, 224},
                            {640, 224, 224, 224}, {33, 44, 5, 700}};
    for (int i = 0; i < 8; i++) {
        const int *s = sizes[i];
        check_composition(s[0], s[1], s[2], s[3], &seed);
        check_grey_path(s[0], s[1], s[2], s[3], &seed);
        check_flat(s[0], s[1], s[2], s[3]);
    }
    uint32_t copy_seed = 5;
    rgb_image in = random_image(224, 224, 0, &copy_seed), out;
    if (resize(&in, 224, 224, &out) == 0) {
        CHECK(!memcmp(in.pixels, out.pixels, 224 * 224 * 3), "same-size resize is not a copy");
        rgb_image_free(&out);
    }
    rgb_image_free(&in);
    return check_summary();
}
