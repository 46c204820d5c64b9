/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "report_job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fail(report_job *job, int http_status, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(job->message, sizeof job->message, format, args);
    va_end(args);
    job->http_status = http_status;
}

/* The r2gen status of a failed encode or generation as an HTTP status. */
static int http_status_of(r2gen_status status)
{
    switch (status) {
    case R2GEN_ERR_IMAGE: return 415;
    case R2GEN_ERR_CANCELLED: return 503;
    default: return 500;
    }
}

/* Add one decoded frame as a view: grey frames as a viewer shows them, colour ones as they are. */
static void encode_frame(report_job *job, r2gen_ctx *ctx, const view *v,
                         const OrthancPluginImage *image)
{
    OrthancPluginContext *orthanc = job->orthanc;
    OrthancPluginPixelFormat format = OrthancPluginGetImagePixelFormat(orthanc, image);
    grey_frame frame = {8, 0, (int)OrthancPluginGetImageWidth(orthanc, image),
                        (int)OrthancPluginGetImageHeight(orthanc, image),
                        (ptrdiff_t)OrthancPluginGetImagePitch(orthanc, image),
                        OrthancPluginGetImageBuffer(orthanc, image)};
    r2gen_image input = r2gen_image_default();
    input.width = frame.width;
    input.height = frame.height;
    uint8_t *shown = NULL;
    switch (format) {
    case OrthancPluginPixelFormat_RGB24:
        input.format = R2GEN_PIXEL_RGB8;
        input.stride_bytes = frame.pitch;
        input.pixels = frame.pixels;
        break;
    case OrthancPluginPixelFormat_Grayscale16:
    case OrthancPluginPixelFormat_SignedGrayscale16:
        frame.bits = 16;
        frame.is_signed = format == OrthancPluginPixelFormat_SignedGrayscale16;
        /* fall through */
    case OrthancPluginPixelFormat_Grayscale8:
        if (frame.width <= 0 || frame.height <= 0 ||
            (size_t)frame.width * (size_t)frame.height > R2GEN_IMAGE_MAX_PIXELS) {
            fail(job, 415, "instance %s: a %dx%d frame is out of limits", v->id, frame.width,
                 frame.height);
            return;
        }
        shown = malloc((size_t)frame.width * (size_t)frame.height);
        if (!shown || display_to_gray8(&v->display, &frame, shown) != 0) {
            free(shown);
            fail(job, 500, "instance %s: out of memory", v->id);
            return;
        }
        input.format = R2GEN_PIXEL_GRAY8;
        input.pixels = shown;
        break;
    default:
        fail(job, 415, "instance %s: Orthanc's pixel format %d is not supported", v->id,
             (int)format);
        return;
    }
    r2gen_status status = r2gen_encode_image(ctx, &input);
    if (status != R2GEN_OK)
        fail(job, http_status_of(status), "instance %s: %s", v->id, r2gen_last_error(ctx));
    free(shown);
}

/* Decode frame 0 of a view with Orthanc's decoder (the one its viewers use) and encode it. */
static void add_view(report_job *job, r2gen_ctx *ctx, const view *v)
{
    OrthancPluginMemoryBuffer dicom;
    OrthancPluginErrorCode code = OrthancPluginGetDicomForInstance(job->orthanc, &dicom, v->id);
    if (code != OrthancPluginErrorCode_Success) {
        fail(job, code == OrthancPluginErrorCode_UnknownResource ? 404 : 500,
             "instance %s: %s", v->id, OrthancPluginGetErrorDescription(job->orthanc, code));
        return;
    }
    double start = monotonic_seconds();
    OrthancPluginImage *image = OrthancPluginDecodeDicomImage(job->orthanc, dicom.data,
                                                              dicom.size, 0);
    OrthancPluginFreeMemoryBuffer(job->orthanc, &dicom);
    double decoded = monotonic_seconds();
    job->decode_s += decoded - start;
    if (!image) {
        fail(job, 415, "instance %s: Orthanc cannot decode its pixel data (JPEG 2000 needs the "
                       "orthanc-gdcm plugin)", v->id);
        return;
    }
    encode_frame(job, ctx, v, image);
    OrthancPluginFreeImage(job->orthanc, image);
    job->encode_s += monotonic_seconds() - decoded;
}

static int cancel_when_stopping(void *user, int step, int max_steps)
{
    (void)step;
    (void)max_steps;
    return work_queue_stopping(user);
}

void report_job_run(void *p, r2gen_ctx *ctx, void *user)
{
    (void)user;
    report_job *job = p;
    job->started = monotonic_seconds();
    job->http_status = 200;
    r2gen_clear_images(ctx);
    for (int i = 0; i < job->n_views && job->http_status == 200; i++)
        add_view(job, ctx, &job->views[i]);
    if (job->http_status == 200) {
        r2gen_generate_params params = *job->generate;
        params.progress = cancel_when_stopping;
        params.user_data = job->queue;
        double start = monotonic_seconds();
        r2gen_status status = r2gen_generate_report(ctx, &params, &job->report);
        job->generate_s = monotonic_seconds() - start;
        if (status != R2GEN_OK)
            fail(job, http_status_of(status), "cannot write the report: %s",
                 r2gen_last_error(ctx));
    }
    r2gen_clear_images(ctx);
    job->finished = monotonic_seconds();
}
