/* r2gen_encode_image_memory on arbitrary bytes: format sniffing, the PNG/BMP (stb_image), JPEG
 * (libjpeg-turbo) and PGM/PPM decoders, the 16-bit grey mappings, resize, normalisation and the
 * micro model's Swin. The input's length picks the 16-bit grey mapping, so every seed is also
 * decoded under each mapping as the fuzzer changes its length. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    r2gen_ctx *ctx = fuzz_model_context();
    r2gen_image_options options = r2gen_image_options_default();
    options.gray16_mapping = (r2gen_gray16_mapping)(size % 3);
    options.window_center = 1000.0;
    options.window_width = 2000.0;
    FUZZ_ASSERT(r2gen_set_image_options(ctx, &options) == R2GEN_OK);

    r2gen_status status = r2gen_encode_image_memory(ctx, data, size);
    fuzz_check_failure(ctx, status);
    if (size > 0) FUZZ_ASSERT(status == R2GEN_OK || status == R2GEN_ERR_IMAGE ||
                              status == R2GEN_ERR_OUT_OF_MEMORY);
    FUZZ_ASSERT(r2gen_n_views(ctx) == (status == R2GEN_OK));
    r2gen_clear_images(ctx);
    return 0;
}
