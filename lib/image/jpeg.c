/* JPEG through libjpeg-turbo with the settings PIL decodes with (JDCT_ISLOW, fancy upsampling,
 * RGB or grey output), so pixels match the reference bit for bit. libjpeg reports fatal errors
 * by calling error_exit, which by default exits the process: ours longjmps back instead. */
#include "image/image_internal.h"

#ifdef R2GEN_HAVE_LIBJPEG

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* A progressive file needs about ten scans; thousands of tiny scans are a known way to make a
 * small file take minutes to decode, so refuse past this (libjpeg-turbo's advice). */
#define JPEG_MAX_SCANS 500
/* Cap on libjpeg's working memory (whole-image coefficient buffers of progressive files). */
#define JPEG_MAX_WORK_BYTES (IMAGE_MAX_PIXELS * 8)

typedef struct jpeg_failure {
    struct jpeg_error_mgr manager; /* first, so cinfo->err leads back to this struct */
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX + 64];
} jpeg_failure;

static void on_error_exit(j_common_ptr cinfo)
{
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    cinfo->err->format_message(cinfo, failure->message);
    longjmp(failure->jump, 1);
}

/* Warnings (level -1) about corrupt data are ignored, as PIL ignores them; running out of data is
 * an error, as in PIL ("image file is truncated"). jpeg_mem_src would otherwise pad the image with
 * grey and carry on. Trace messages (level >= 0) are dropped. */
static void on_message(j_common_ptr cinfo, int level)
{
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_failure *failure = (jpeg_failure *)cinfo->err;
        snprintf(failure->message, sizeof failure->message, "truncated data");
        longjmp(failure->jump, 1);
    }
}

static void on_progress(j_common_ptr cinfo)
{
    j_decompress_ptr decompress = (j_decompress_ptr)cinfo;
    if (decompress->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_failure *failure = (jpeg_failure *)cinfo->err;
        snprintf(failure->message, sizeof failure->message,
                 "more than %d scans (corrupt or hostile file)", JPEG_MAX_SCANS);
        longjmp(failure->jump, 1);
    }
}

r2gen_status jpeg_decode_memory(const uint8_t *data, size_t size, rgb_image *out, error *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    memset(out, 0, sizeof *out);
    cinfo.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = on_error_exit;
    failure.manager.emit_message = on_message;
    failure.progress.progress_monitor = on_progress;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&cinfo);
        rgb_image_free(out);
        return error_set(err, R2GEN_ERR_IMAGE, "JPEG: %s", failure.message);
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &failure.progress;
    cinfo.mem->max_memory_to_use = JPEG_MAX_WORK_BYTES;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    r2gen_status status = image_check_size(cinfo.image_width, cinfo.image_height, R2GEN_ERR_IMAGE,
                                           "JPEG", err);
    if (status == R2GEN_OK) {
        switch (cinfo.jpeg_color_space) {
        case JCS_GRAYSCALE:
            cinfo.out_color_space = JCS_GRAYSCALE;
            break;
        case JCS_YCbCr:
        case JCS_RGB:
            cinfo.out_color_space = JCS_RGB;
            break;
        default:
            status = error_set(err, R2GEN_ERR_IMAGE,
                               "JPEG: colour space %d (CMYK/YCCK) is not supported",
                               (int)cinfo.jpeg_color_space);
        }
    }
    if (status == R2GEN_OK) status = rgb_image_alloc(out, (int)cinfo.image_width,
                                                     (int)cinfo.image_height, err);
    if (status != R2GEN_OK) {
        jpeg_destroy_decompress(&cinfo);
        return status;
    }
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);
    const int width = out->width;
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *row = out->pixels + (size_t)cinfo.output_scanline * width * 3;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (cinfo.out_color_space == JCS_GRAYSCALE) /* expand in place, back to front */
            for (int x = width - 1; x >= 0; x--) row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = row[x];
    }
    /* All rows are out: like PIL, whatever follows (EOI, trailing bytes) is not checked. */
    jpeg_destroy_decompress(&cinfo);
    return R2GEN_OK;
}

#define R2GEN_STRINGIFY_(x) #x
#define R2GEN_STRINGIFY(x) R2GEN_STRINGIFY_(x)

const char *image_jpeg_decoder(void)
{
#ifdef LIBJPEG_TURBO_VERSION
    return "libjpeg-turbo " R2GEN_STRINGIFY(LIBJPEG_TURBO_VERSION);
#else
    return "libjpeg " R2GEN_STRINGIFY(JPEG_LIB_VERSION);
#endif
}

#else

const char *image_jpeg_decoder(void) { return "stb_image"; }

#endif
