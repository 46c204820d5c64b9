/* Image input stage: bytes or caller pixels -> RGB uint8 -> PIL-exact bicubic resize -> normalised
 * CHW float32, reproducing what R2GenGPT's loader and HF's ViTImageProcessor compute (PIL 9.4).
 *
 * Conversion to RGB8 follows PIL's Image.convert("RGB"):
 *   8-bit grey            R = G = B = value
 *   16-bit grey           clamped to 0..255, not scaled (the reference's behaviour; see
 *                         image_gray16_mode for the window / min-max alternatives)
 *   16-bit RGB/RGBA/grey+alpha (PNG)   the high byte of each sample (v >> 8)
 *   alpha                 dropped without compositing
 * Formats: PNG, BMP (stb_image), JPEG (libjpeg-turbo with its defaults, as PIL; stb_image when the
 * library is built without it), binary PGM/PPM (P5/P6, decoded here with PIL's maxval scaling). */
#ifndef R2GEN_IMAGE_IMAGE_H
#define R2GEN_IMAGE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Limits checked from the header, before any pixel memory is allocated. */
#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS ((int64_t)1 << 26) /* 64 Mi pixels, e.g. 8192 x 8192 */
/* Files are read whole into memory; stb_image takes an int length. */
#define IMAGE_MAX_FILE_BYTES ((size_t)1 << 30)

typedef struct rgb_image {
    int width, height;
    uint8_t *pixels; /* height x width x 3, row-major, malloc'ed */
} rgb_image;

/* How 16-bit grey samples become 8 bits. Applies to 16-bit grey files and IMAGE_GRAY16 pixels;
 * 16-bit colour samples always keep their high byte, as the reference does.
 *
 * IMAGE_GRAY16_CLAMP   y = min(v, 255). PIL's convert("RGB") of a mode-I image: what the
 *                      reference computed, so the default.
 * IMAGE_GRAY16_WINDOW  DICOM's linear VOI window (PS3.3 C.11.2.1.2.1) onto 0..255, centre c and
 *                      width w (w >= 1), in double:
 *                        v <= c - 0.5 - (w - 1) / 2  ->  0
 *                        v >  c - 0.5 + (w - 1) / 2  ->  255
 *                        else y = floor(((v - (c - 0.5)) / (w - 1) + 0.5) * 255 + 0.5)
 *                      (linear, rounded half up, clamped to 0..255).
 * IMAGE_GRAY16_MINMAX  the image's own range [lo, hi] (minimum and maximum grey sample) onto
 *                      0..255: y = floor((v - lo) * 255 / (hi - lo) + 0.5), computed exactly in
 *                      integers; y = 0 everywhere when hi == lo. */
typedef enum image_gray16_mode {
    IMAGE_GRAY16_CLAMP = 0,
    IMAGE_GRAY16_WINDOW,
    IMAGE_GRAY16_MINMAX,
} image_gray16_mode;

typedef struct image_options {
    image_gray16_mode gray16;
    double window_center; /* IMAGE_GRAY16_WINDOW only */
    double window_width;
} image_options;

/* Layouts of caller-supplied pixels. IMAGE_GRAY16 samples are native-endian uint16. */
typedef enum image_pixel_format {
    IMAGE_GRAY8 = 0,
    IMAGE_GRAY16,
    IMAGE_RGB8,
    IMAGE_RGBA8,
} image_pixel_format;

/* Decode an encoded image (format recognised from its first bytes). options may be NULL
 * (= IMAGE_GRAY16_CLAMP). On success *out owns its pixels (free with rgb_image_free); on failure
 * *out is empty. Errors: R2GEN_ERR_INVALID_ARGUMENT (NULL, empty, bad options), R2GEN_ERR_IMAGE
 * (unknown format, corrupt or truncated data, over the limits), R2GEN_ERR_OUT_OF_MEMORY. */
r2gen_status image_decode_memory(const void *data, size_t size, const image_options *options,
                                 rgb_image *out, error *err);

/* Same for a file; an unreadable file is R2GEN_ERR_IO. */
r2gen_status image_decode_file(const char *path, const image_options *options, rgb_image *out,
                               error *err);

/* Caller pixels: `height` rows of `width` pixels, row r starting at pixels + r * stride_bytes.
 * stride_bytes 0 means tightly packed; otherwise it must be at least one row's bytes.
 * Invalid sizes, NULL pointers, and images over the limits are R2GEN_ERR_INVALID_ARGUMENT. */
r2gen_status image_from_raw(image_pixel_format format, int width, int height,
                            ptrdiff_t stride_bytes, const void *pixels,
                            const image_options *options, rgb_image *out, error *err);

void rgb_image_free(rgb_image *image);

/* An empty image of width x height (uninitialised pixels), or R2GEN_ERR_OUT_OF_MEMORY. The size
 * must already have passed the limits. */
r2gen_status rgb_image_alloc(rgb_image *image, int width, int height, error *err);

/* R2GEN_OK when width x height is positive and within IMAGE_MAX_SIDE / IMAGE_MAX_PIXELS; otherwise
 * sets `status` with a message naming `what` ("PNG", "raw pixels", ...). */
r2gen_status image_check_size(int64_t width, int64_t height, r2gen_status status, const char *what,
                              error *err);

/* The JPEG decoder built in: "libjpeg-turbo 2.1.5" or "stb_image". */
const char *image_jpeg_decoder(void);

/* PIL's Image.resize((out_width, out_height), BICUBIC) on an RGB image (Pillow's 8-bit fixed-point
 * path, bit-exact). *out is allocated here. */
r2gen_status image_resize_bicubic(const rgb_image *in, int out_width, int out_height,
                                  rgb_image *out, error *err);

/* u8 -> (u8 / 255 - mean[c]) / std[c] in float32 as NumPy computes it, HWC -> CHW:
 * chw_out holds 3 x height x width floats. */
void image_normalize_chw(const rgb_image *image, const float mean[3], const float std[3],
                         float *chw_out);

/* Resize to size x size (skipped when already that size), then normalise into chw_out
 * (3 x size x size floats): the model input. */
r2gen_status image_preprocess(const rgb_image *image, int size, const float mean[3],
                              const float std[3], float *chw_out, error *err);

#endif
