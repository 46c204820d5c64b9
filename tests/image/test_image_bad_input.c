/* Bad input never crashes, leaks or succeeds by accident: each case returns its status and leaves
 * the output image empty. Truncated PNG/JPEG (the fixtures cut at many lengths), corrupted bytes,
 * random bytes, unsupported formats, sizes over the limits, bad raw-pixel arguments and options. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "check.h"
#include "image/image.h"
#include "image_test_util.h"
#include "test_paths.h"

/* Decodes and checks the status; on failure the image must be empty, on success it is freed. */
static void expect_decode(const void *data, size_t size, const image_options *options,
                          r2gen_status expected, const char *what)
{
    error err = {0};
    rgb_image image = {7, 7, (uint8_t *)&image}; /* garbage the call must clear */
    r2gen_status status = image_decode_memory(data, size, options, &image, &err);
    CHECK(status == expected, "%s: status %d (%s), expected %d", what, status,
          status ? err.message : "ok", expected);
    if (status != R2GEN_OK)
        CHECK(!image.pixels && !image.width && !image.height, "%s: output not empty", what);
    else
        rgb_image_free(&image);
}

static uint8_t *load_fixture(const char *relative, size_t *size)
{
    char path[1024];
    uint8_t *data = read_whole_file(test_data_path(path, sizeof path, relative), size);
    CHECK(data != NULL, "cannot read %s", path);
    return data;
}

static void check_truncations(const char *relative)
{
    size_t size;
    uint8_t *data = load_fixture(relative, &size);
    if (!data) return;
    expect_decode(data, size, NULL, R2GEN_OK, relative);
    /* Inside the signature/header, inside the headers, and through the compressed data (PNG
     * ends with a 12-byte IEND chunk; the cuts stay before the JPEG's last 2-byte EOI and enough
     * bytes of entropy-coded data that rows are missing). */
    const size_t cuts[] = {1, 2, 3, 7, 12, 20, 30, 50, 100, 200, 400,
                           size / 8, size / 4, size / 3, size / 2, 2 * size / 3, 3 * size / 4,
                           7 * size / 8, size - 40};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char what[300];
        snprintf(what, sizeof what, "%s cut to %zu of %zu bytes", relative, cuts[i], size);
        expect_decode(data, cuts[i], NULL, R2GEN_ERR_IMAGE, what);
    }
    free(data);
}

/* Overwrite a few bytes in the middle: the decoder may reject the file or decode garbage,
 * but must not crash (checked under ASan). */
static void check_corruptions(const char *relative)
{
    size_t size;
    uint8_t *data = load_fixture(relative, &size);
    if (!data) return;
    uint8_t *copy = malloc(size);
    uint32_t seed = 99;
    for (int trial = 0; trial < 40; trial++) {
        memcpy(copy, data, size);
        size_t at = 2 + test_random(&seed) % (size - 2);
        for (int k = 0; k < 1 + trial % 8 && at + k < size; k++)
            copy[at + k] = (uint8_t)test_random(&seed);
        error err = {0};
        rgb_image image;
        r2gen_status status = image_decode_memory(copy, size, NULL, &image, &err);
        CHECK(status == R2GEN_OK || status == R2GEN_ERR_IMAGE, "%s corrupted at %zu: status %d",
              relative, at, status);
        CHECK((status == R2GEN_OK) == (image.pixels != NULL), "%s corrupted: output mismatch",
              relative);
        rgb_image_free(&image);
    }
    free(copy);
    free(data);
}

static void check_random_bytes(void)
{
    static const char *prefixes[] = {"", "\x89PNG\r\n\x1a\n", "\xFF\xD8\xFF", "BM", "P5", "P6",
                                     "P5 1", "GIF89a"};
    uint32_t seed = 2024;
    uint8_t buffer[3000];
    for (int trial = 0; trial < 160; trial++) {
        const char *prefix = prefixes[trial % 8];
        size_t prefix_len = strlen(prefix);
        size_t size = prefix_len + 1 + test_random(&seed) % 2000;
        memcpy(buffer, prefix, prefix_len);
        for (size_t i = prefix_len; i < size; i++) buffer[i] = (uint8_t)test_random(&seed);
        char what[64];
        snprintf(what, sizeof what, "random bytes #%d (%zu bytes)", trial, size);
        expect_decode(buffer, size, NULL, R2GEN_ERR_IMAGE, what);
    }
}

static void check_unsupported_formats(void)
{
    expect_decode("GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14, NULL, R2GEN_ERR_IMAGE, "GIF");
    expect_decode("P2\n1 1\n255\n7\n", 13, NULL, R2GEN_ERR_IMAGE, "plain (ASCII) PGM");
    expect_decode("x", 1, NULL, R2GEN_ERR_IMAGE, "one byte");
    /* TGA and HDR are formats stb_image could read, but not ones the library accepts. */
    const uint8_t pixel[3] = {1, 2, 3};
    byte_buffer tga = {0};
    stbi_write_tga_to_func(byte_buffer_write, &tga, 1, 1, 3, pixel);
    expect_decode(tga.data, tga.size, NULL, R2GEN_ERR_IMAGE, "TGA");
    byte_buffer_free(&tga);
    const float radiance[3] = {1.0f, 0.5f, 0.25f};
    byte_buffer hdr = {0};
    stbi_write_hdr_to_func(byte_buffer_write, &hdr, 1, 1, 3, radiance);
    expect_decode(hdr.data, hdr.size, NULL, R2GEN_ERR_IMAGE, "Radiance HDR");
    byte_buffer_free(&hdr);
}

static void put_be(uint8_t *p, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Headers claiming sizes over the limits are refused before any pixel allocation. */
static void check_huge_dimensions(void)
{
    const uint16_t one = 0;
    byte_buffer png = {0};
    png16_encode(&png, 1, 1, 0, &one, -1);
    const uint32_t sizes[][2] = {{20000, 1}, {1, 20000}, {10000, 10000}, {0, 1}};
    for (int i = 0; i < 4; i++) {
        put_be(png.data + 16, sizes[i][0], 4); /* IHDR width, height (stb skips the CRC) */
        put_be(png.data + 20, sizes[i][1], 4);
        char what[64];
        snprintf(what, sizeof what, "PNG claiming %ux%u", sizes[i][0], sizes[i][1]);
        expect_decode(png.data, png.size, NULL, R2GEN_ERR_IMAGE, what);
    }
    byte_buffer_free(&png);

    size_t size;
    uint8_t *jpeg = load_fixture("r2gen-tiny/images/lateral_gray8.jpg", &size);
    for (size_t i = 2; jpeg && i + 9 < size; i++) {
        if (jpeg[i] != 0xFF || jpeg[i + 1] != 0xC0) continue; /* SOF0: len, precision, h, w */
        for (int k = 0; k < 4; k++) {
            uint8_t *copy = malloc(size);
            memcpy(copy, jpeg, size);
            put_be(copy + i + 5, sizes[k][1], 2);
            put_be(copy + i + 7, sizes[k][0] > 65535 ? 65535 : sizes[k][0], 2);
            char what[64];
            snprintf(what, sizeof what, "JPEG claiming %ux%u", sizes[k][0], sizes[k][1]);
            expect_decode(copy, size, NULL, R2GEN_ERR_IMAGE, what);
            free(copy);
        }
        break;
    }
    free(jpeg);

    const char *pnm[] = {"P5 20000 10 255\n", "P6 10000 10000 255\n", "P5 0 10 255\n",
                         "P5 12345678901 1 255\n", "P5 4 4 70000\n", "P5 4 4 0\n", "P5 4 4"};
    for (int i = 0; i < 7; i++)
        expect_decode(pnm[i], strlen(pnm[i]), NULL, R2GEN_ERR_IMAGE, pnm[i]);

    uint8_t bmp_pixels[4 * 4 * 3] = {0};
    byte_buffer bmp = {0};
    stbi_write_bmp_to_func(byte_buffer_write, &bmp, 4, 4, 3, bmp_pixels);
    put_le32(bmp.data + 18, 20000);
    expect_decode(bmp.data, bmp.size, NULL, R2GEN_ERR_IMAGE, "BMP claiming 20000x4");
    byte_buffer_free(&bmp);
}

static void expect_raw(image_pixel_format format, int width, int height, ptrdiff_t stride,
                       const void *pixels, const image_options *options, const char *what)
{
    error err = {0};
    rgb_image image = {1, 1, NULL};
    r2gen_status status = image_from_raw(format, width, height, stride, pixels, options, &image,
                                         &err);
    CHECK(status == R2GEN_ERR_INVALID_ARGUMENT, "%s: status %d", what, status);
    CHECK(!image.pixels && !image.width, "%s: output not empty", what);
    CHECK(err.message[0] != '\0', "%s: no message", what);
}

static void check_bad_raw(void)
{
    static uint8_t pixels[64 * 64 * 4];
    expect_raw(IMAGE_RGB8, 0, 4, 0, pixels, NULL, "zero width");
    expect_raw(IMAGE_RGB8, 4, 0, 0, pixels, NULL, "zero height");
    expect_raw(IMAGE_GRAY8, -3, 4, 0, pixels, NULL, "negative width");
    expect_raw(IMAGE_GRAY16, 4, 4, 7, pixels, NULL, "stride below one gray16 row");
    expect_raw(IMAGE_RGBA8, 4, 4, 15, pixels, NULL, "stride below one rgba8 row");
    expect_raw(IMAGE_RGB8, 4, 4, -12, pixels, NULL, "negative stride");
    expect_raw(IMAGE_RGB8, 4, 4, 0, NULL, NULL, "NULL pixels");
    expect_raw((image_pixel_format)99, 4, 4, 0, pixels, NULL, "unknown format");
    expect_raw(IMAGE_GRAY8, 20000, 1, 0, pixels, NULL, "20000 wide");
    expect_raw(IMAGE_GRAY8, 10000, 10000, 0, pixels, NULL, "100 Mpixel");
    expect_raw(IMAGE_GRAY8, 4, 3, PTRDIFF_MAX / 2, pixels, NULL, "stride overflowing");
    image_options bad_window = {IMAGE_GRAY16_WINDOW, 100.0, 0.5};
    expect_raw(IMAGE_GRAY16, 4, 4, 0, pixels, &bad_window, "window width 0.5");
    image_options nan_window = {IMAGE_GRAY16_WINDOW, NAN, 100.0};
    expect_raw(IMAGE_GRAY16, 4, 4, 0, pixels, &nan_window, "window centre NaN");
    image_options bad_mode = {(image_gray16_mode)42, 0, 0};
    expect_raw(IMAGE_GRAY16, 4, 4, 0, pixels, &bad_mode, "unknown gray16 mode");

    error err = {0};
    CHECK(image_from_raw(IMAGE_RGB8, 4, 4, 0, pixels, NULL, NULL, &err) ==
              R2GEN_ERR_INVALID_ARGUMENT, "NULL output image");
    expect_decode(NULL, 10, NULL, R2GEN_ERR_INVALID_ARGUMENT, "NULL data");
    expect_decode(pixels, 0, NULL, R2GEN_ERR_INVALID_ARGUMENT, "zero bytes");
    expect_decode("P5 1 1 255\n\x01", 12, &bad_mode, R2GEN_ERR_INVALID_ARGUMENT,
                  "decode with bad options");
}

static void check_bad_resize_and_preprocess(void)
{
    uint8_t pixels[4 * 4 * 3] = {0};
    rgb_image small = {4, 4, pixels}, out;
    error err = {0};
    CHECK(image_resize_bicubic(NULL, 8, 8, &out, &err) == R2GEN_ERR_INVALID_ARGUMENT,
          "resize NULL input");
    CHECK(image_resize_bicubic(&small, 0, 8, &out, &err) == R2GEN_ERR_INVALID_ARGUMENT,
          "resize to zero width");
    CHECK(image_resize_bicubic(&small, 8, 20000, &out, &err) == R2GEN_ERR_INVALID_ARGUMENT,
          "resize to 20000 high");
    const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.5f, 0.5f, 0.5f};
    float chw[3 * 8 * 8];
    CHECK(image_preprocess(&small, 8, mean, std, NULL, &err) == R2GEN_ERR_INVALID_ARGUMENT,
          "preprocess NULL output");
    CHECK(image_preprocess(&small, 0, mean, std, chw, &err) == R2GEN_ERR_INVALID_ARGUMENT,
          "preprocess to size 0");
    CHECK(image_preprocess(NULL, 8, mean, std, chw, &err) == R2GEN_ERR_INVALID_ARGUMENT,
          "preprocess NULL image");
}

static void check_files(void)
{
    error err = {0};
    rgb_image image;
    CHECK(image_decode_file("/nonexistent/r2gen/image.png", NULL, &image, &err) == R2GEN_ERR_IO,
          "missing file: %s", err.message);
    CHECK(image_decode_file(".", NULL, &image, &err) == R2GEN_ERR_IO, "directory: %s",
          err.message);
    CHECK(image_decode_file(NULL, NULL, &image, &err) == R2GEN_ERR_INVALID_ARGUMENT, "NULL path");
    char path[256];
    scratch_path(path, sizeof path, "empty.png");
    FILE *file = fopen(path, "wb");
    if (file) fclose(file);
    CHECK(image_decode_file(path, NULL, &image, &err) == R2GEN_ERR_IMAGE, "empty file: %s",
          err.message);
    remove(path);
}

int main(void)
{
    check_truncations("swin-tiny/rgb8_311x257/input.png");
    check_truncations("swin-tiny/gray16_400x380/input.png");
    check_truncations("r2gen-tiny/images/lateral_gray8.jpg");
    check_truncations("r2gen-tiny/images/frontal_gray8.png");
    check_corruptions("swin-tiny/rgb8_311x257/input.png");
    check_corruptions("r2gen-tiny/images/lateral_gray8.jpg");
    check_random_bytes();
    check_unsupported_formats();
    check_huge_dimensions();
    check_bad_raw();
    check_bad_resize_and_preprocess();
    check_files();
    return check_summary();
}
