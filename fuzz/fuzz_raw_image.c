/* r2gen_encode_image on arbitrary dimensions, strides, pixel formats and 16-bit grey settings.
 * The input starts with a header (little-endian): format u8, mapping u8, width i32, height i32,
 * stride i32, window centre i16, window width u16; the rest are pixels, repeated to fill the
 * buffer the header describes.
 *
 * The harness knows the documented rules (sides 1..R2GEN_IMAGE_MAX_SIDE, at most
 * R2GEN_IMAGE_MAX_PIXELS, a stride of 0 or at least one row) and checks the library's verdict
 * against them both ways. Rejected headers are passed the short input itself as pixels, so a
 * library that reads pixels before rejecting is caught by AddressSanitizer. */
#include <string.h>

#include "fuzz_common.h"

#define HEADER_BYTES 18
#define MAX_PIXEL_BYTES ((size_t)1 << 22) /* larger valid images are skipped (speed, memory) */

typedef struct raw_header {
    uint8_t format, mapping;
    int32_t width, height, stride;
    int16_t window_center;
    uint16_t window_width;
} raw_header;

static raw_header read_header(const uint8_t *p)
{
    raw_header h;
    h.format = p[0];
    h.mapping = p[1];
    memcpy(&h.width, p + 2, 4);
    memcpy(&h.height, p + 6, 4);
    memcpy(&h.stride, p + 10, 4);
    memcpy(&h.window_center, p + 14, 2);
    memcpy(&h.window_width, p + 16, 2);
    return h;
}

/* Bytes the caller must provide for this header, or 0 when the library must reject it. */
static size_t required_bytes(const raw_header *h)
{
    static const int pixel_bytes[] = {1, 2, 3, 4};
    if (h->format > R2GEN_PIXEL_RGBA8) return 0;
    if (h->width < 1 || h->height < 1 || h->width > R2GEN_IMAGE_MAX_SIDE ||
        h->height > R2GEN_IMAGE_MAX_SIDE ||
        (int64_t)h->width * h->height > R2GEN_IMAGE_MAX_PIXELS)
        return 0;
    int64_t row = (int64_t)h->width * pixel_bytes[h->format];
    int64_t stride = h->stride == 0 ? row : h->stride;
    if (stride < row) return 0;
    return (size_t)(stride * (h->height - 1) + row);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER_BYTES) return 0;
    r2gen_ctx *ctx = fuzz_model_context();
    raw_header h = read_header(data);
    r2gen_image_options options = r2gen_image_options_default();
    options.gray16_mapping = (r2gen_gray16_mapping)(h.mapping % 4); /* 3 is invalid */
    options.window_center = h.window_center;
    options.window_width = h.window_width;
    r2gen_status set = r2gen_set_image_options(ctx, &options);
    int options_valid = options.gray16_mapping != 3 &&
                        (options.gray16_mapping != R2GEN_GRAY16_WINDOW || h.window_width >= 1);
    FUZZ_ASSERT((set == R2GEN_OK) == options_valid);

    size_t needed = required_bytes(&h);
    if (needed > MAX_PIXEL_BYTES) return 0;
    const uint8_t *payload = data + HEADER_BYTES;
    size_t payload_size = size - HEADER_BYTES;
    uint8_t *pixels = NULL;
    if (needed > 0) {
        pixels = malloc(needed);
        if (!pixels) return 0;
        for (size_t i = 0; i < needed; i++)
            pixels[i] = payload_size ? payload[i % payload_size] : (uint8_t)i;
    }
    r2gen_image image = r2gen_image_default();
    image.format = (r2gen_pixel_format)h.format;
    image.width = h.width;
    image.height = h.height;
    image.stride_bytes = h.stride;
    image.pixels = pixels ? (const void *)pixels : (const void *)payload;
    r2gen_status status = r2gen_encode_image(ctx, &image);
    fuzz_check_failure(ctx, status);
    if (needed == 0)
        FUZZ_ASSERT(status == R2GEN_ERR_INVALID_ARGUMENT);
    else
        FUZZ_ASSERT(status == R2GEN_OK || status == R2GEN_ERR_OUT_OF_MEMORY);
    r2gen_clear_images(ctx);
    free(pixels);
    return 0;
}
