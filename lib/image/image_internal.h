/* Shared by the image stage's decoders: decoded samples in whatever layout the decoder produced,
 * and the per-sample-value tables that turn them into RGB8. */
#ifndef R2GEN_IMAGE_INTERNAL_H
#define R2GEN_IMAGE_INTERNAL_H

#include "image/image.h"

/* Decoded samples, row by row. 16-bit samples are native-endian unless big_endian (PNM files). */
typedef struct sample_rows {
    const uint8_t *data;
    size_t stride;   /* bytes from one row to the next */
    int width, height;
    int channels;    /* 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA */
    int bytes;       /* per sample: 1 or 2 */
    int big_endian;
} sample_rows;

/* One 8-bit result per possible sample value; 8-bit samples use the first 256 entries. */
#define SAMPLE_TABLE_SIZE 65536

/* The options with defaults filled in and checked (R2GEN_ERR_INVALID_ARGUMENT when bad). */
r2gen_status image_options_resolve(const image_options *options, image_options *resolved,
                                   error *err);

/* table[v] = v (8-bit samples stored as they are). */
void sample_table_identity(uint8_t *table);

/* table[v] = v >> 8 (16-bit colour: PIL keeps the high byte). */
void sample_table_high_byte(uint8_t *table);

/* table[v] for 16-bit grey rows (channel 0 of `rows`), per options->gray16. When pnm_maxval is not
 * 0 or 65535, samples are first rescaled from 0..pnm_maxval to 0..65535 as PIL's PPM decoder
 * does (see pnm_rescale). */
void sample_table_gray16(const image_options *options, const sample_rows *rows, int pnm_maxval,
                         uint8_t *table);

/* PIL's PPM decoder: min(out_max, round-half-even(v / maxval * out_max)) in double. */
int pnm_rescale(int v, int maxval, int out_max);

/* Convert rows to RGB8 through table (grey replicated, alpha dropped); allocates *out. */
r2gen_status samples_to_rgb(const sample_rows *rows, const uint8_t *table, rgb_image *out,
                            error *err);

/* Whether an allocation inside stb_image failed on this thread since the last call (which clears
 * it): a NULL from stbi_load is then R2GEN_ERR_OUT_OF_MEMORY rather than corrupt data. */
int image_stb_allocation_failed(void);

#ifdef R2GEN_HAVE_LIBJPEG
/* libjpeg-turbo with PIL's settings; corrupt or truncated data is R2GEN_ERR_IMAGE. */
r2gen_status jpeg_decode_memory(const uint8_t *data, size_t size, rgb_image *out, error *err);
#endif

#endif
