/* The image stage against the reference: for the swin-tiny fixture images, decoded RGB, PIL's
 * bicubic resize and the normalised model input must be bit-identical to the .npy files; the
 * r2gen-tiny study images must decode with the right size and channel layout. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "image/image.h"
#include "image_test_util.h"
#include "npy.h"
#include "test_paths.h"

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

/* Loads folder/name and checks its dtype and element count. */
static int load_expected(const char *folder, const char *name, const char *dtype, size_t n_elems,
                         npy_array *array)
{
    char relative[256], path[1024];
    snprintf(relative, sizeof relative, "swin-tiny/%s/%s", folder, name);
    if (npy_load(test_data_path(path, sizeof path, relative), array) != 0) {
        CHECK(0, "cannot load %s", path);
        return -1;
    }
    int ok = !strcmp(array->dtype, dtype) && array->n_elems == n_elems;
    CHECK(ok, "%s: dtype %s, %zu elements (expected %s, %zu)", relative, array->dtype,
          array->n_elems, dtype, n_elems);
    if (!ok) npy_free(array);
    return ok ? 0 : -1;
}

static size_t count_different(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t different = 0;
    for (size_t i = 0; i < n; i++) different += a[i] != b[i];
    return different;
}

/* Decodes tests/data/<relative> (its full path left in path) and checks its size. */
static int decode_test_file(const char *relative, int width, int height, char path[1024],
                            rgb_image *image)
{
    error err = {0};
    r2gen_status status = image_decode_file(test_data_path(path, 1024, relative), NULL, image, &err);
    CHECK(status == R2GEN_OK, "%s: %s", relative, err.message);
    if (status != R2GEN_OK) return -1;
    CHECK(image->width == width && image->height == height, "%s: %dx%d, expected %dx%d", relative,
          image->width, image->height, width, height);
    return 0;
}

static void check_swin_fixture(const char *folder, int width, int height)
{
    char relative[256], path[1024];
    snprintf(relative, sizeof relative, "swin-tiny/%s/input.png", folder);
    rgb_image decoded;
    if (decode_test_file(relative, width, height, path, &decoded) != 0) return;

    npy_array expected;
    const size_t n_decoded = (size_t)width * height * 3;
    if (load_expected(folder, "decoded_rgb.npy", "|u1", n_decoded, &expected) == 0) {
        size_t different = count_different(decoded.pixels, expected.data, n_decoded);
        CHECK(different == 0, "%s: %zu decoded samples differ", folder, different);
        npy_free(&expected);
    }

    error err = {0};
    rgb_image resized;
    r2gen_status status = image_resize_bicubic(&decoded, 224, 224, &resized, &err);
    CHECK(status == R2GEN_OK, "%s: resize: %s", folder, err.message);
    if (status == R2GEN_OK &&
        load_expected(folder, "resized_rgb.npy", "|u1", 224 * 224 * 3, &expected) == 0) {
        size_t different = count_different(resized.pixels, expected.data, 224 * 224 * 3);
        CHECK(different == 0, "%s: %zu resized samples differ", folder, different);
        npy_free(&expected);
    }
    rgb_image_free(&resized);

    float *chw = malloc(sizeof(float) * 3 * 224 * 224);
    status = image_preprocess(&decoded, 224, imagenet_mean, imagenet_std, chw, &err);
    CHECK(status == R2GEN_OK, "%s: preprocess: %s", folder, err.message);
    if (status == R2GEN_OK &&
        load_expected(folder, "pixel_values.npy", "<f4", 3 * 224 * 224, &expected) == 0) {
        int identical = !memcmp(chw, expected.data, sizeof(float) * 3 * 224 * 224);
        CHECK(identical, "%s: pixel_values not bit-identical (max abs diff %g)", folder,
              max_abs_diff(chw, expected.data, 3 * 224 * 224));
        printf("%s: pixel_values max abs diff %g\n", folder,
               max_abs_diff(chw, expected.data, 3 * 224 * 224));
        npy_free(&expected);
    }
    free(chw);

    /* The memory entry point gives the same pixels as the file one. */
    size_t size;
    uint8_t *bytes = read_whole_file(path, &size);
    rgb_image from_memory;
    status = bytes ? image_decode_memory(bytes, size, NULL, &from_memory, &err) : R2GEN_ERR_IO;
    CHECK(status == R2GEN_OK && !memcmp(from_memory.pixels, decoded.pixels, n_decoded),
          "%s: decoding from memory differs from the file", folder);
    if (status == R2GEN_OK) rgb_image_free(&from_memory);
    free(bytes);
    rgb_image_free(&decoded);
}

/* 1 when every pixel has R == G == B. */
static int is_grey(const rgb_image *image)
{
    const size_t n = (size_t)image->width * image->height;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = image->pixels + 3 * i;
        if (p[0] != p[1] || p[1] != p[2]) return 0;
    }
    return 1;
}

static void check_study_image(const char *name, int width, int height, int grey)
{
    char relative[256], path[1024];
    snprintf(relative, sizeof relative, "r2gen-tiny/images/%s", name);
    rgb_image image;
    if (decode_test_file(relative, width, height, path, &image) != 0) return;
    CHECK(is_grey(&image) == grey, "%s: grey replication %s", name, grey ? "missing" : "unexpected");
    /* Not a flat image: the decoder produced real content. */
    int lo = 255, hi = 0;
    for (size_t i = 0; i < (size_t)image.width * image.height * 3; i++) {
        if (image.pixels[i] < lo) lo = image.pixels[i];
        if (image.pixels[i] > hi) hi = image.pixels[i];
    }
    CHECK(hi - lo > 100, "%s: pixel range %d..%d looks wrong", name, lo, hi);

    error err = {0};
    float *chw = malloc(sizeof(float) * 3 * 224 * 224);
    r2gen_status status = image_preprocess(&image, 224, imagenet_mean, imagenet_std, chw, &err);
    CHECK(status == R2GEN_OK, "%s: preprocess: %s", name, err.message);
    if (grey && status == R2GEN_OK) {
        /* Grey in, the three channel planes are the same value normalised per channel. */
        int consistent = 1;
        for (size_t i = 0; i < 224 * 224; i++) {
            float v0 = chw[i] * imagenet_std[0] + imagenet_mean[0];
            float v2 = chw[2 * 224 * 224 + i] * imagenet_std[2] + imagenet_mean[2];
            if (v0 - v2 > 1e-5f || v2 - v0 > 1e-5f) consistent = 0;
        }
        CHECK(consistent, "%s: channel planes disagree for a grey image", name);
    }
    free(chw);
    rgb_image_free(&image);
}

int main(void)
{
    check_swin_fixture("rgb8_311x257", 311, 257);
    check_swin_fixture("gray16_400x380", 400, 380);

    check_study_image("frontal_gray8.png", 470, 540, 1);
    check_study_image("lateral_gray8.jpg", 400, 480, 1);
    check_study_image("tinted_rgb8.png", 300, 400, 0);
#ifdef R2GEN_HAVE_LIBJPEG
    CHECK(!strncmp(image_jpeg_decoder(), "libjpeg-turbo", 13), "JPEG decoder is %s",
          image_jpeg_decoder());
#endif
    printf("JPEG decoder: %s\n", image_jpeg_decoder());
    return check_summary();
}
