/* The model input: PIL-exact resize, then HF ViTImageProcessor's rescale and normalise. */
#include "image/image.h"

#include <stddef.h>

void image_normalize_chw(const rgb_image *image, const float mean[3], const float std[3],
                         float *chw_out)
{
    /* NumPy multiplies the uint8 array by the Python float 1/255 in double and casts to float32;
     * the normalisation is then float32 throughout. One table entry per channel and value. */
    float table[3][256];
    for (int c = 0; c < 3; c++)
        for (int u = 0; u < 256; u++) {
            float v = (float)((double)u * (1.0 / 255));
            table[c][u] = (v - mean[c]) / std[c];
        }
    const size_t plane = (size_t)image->width * image->height;
    const uint8_t *pixel = image->pixels;
    for (size_t i = 0; i < plane; i++, pixel += 3) {
        chw_out[i] = table[0][pixel[0]];
        chw_out[plane + i] = table[1][pixel[1]];
        chw_out[2 * plane + i] = table[2][pixel[2]];
    }
}

r2gen_status image_preprocess(const rgb_image *image, int size, const float mean[3],
                              const float std[3], float *chw_out, error *err)
{
    if (!image || !image->pixels || !mean || !std || !chw_out)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "preprocess: NULL argument");
    if (image->width == size && image->height == size) { /* PIL returns a copy: nothing to do */
        image_normalize_chw(image, mean, std, chw_out);
        return R2GEN_OK;
    }
    rgb_image resized;
    r2gen_status status = image_resize_bicubic(image, size, size, &resized, err);
    if (status != R2GEN_OK) return status;
    image_normalize_chw(&resized, mean, std, chw_out);
    rgb_image_free(&resized);
    return R2GEN_OK;
}
