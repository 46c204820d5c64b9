/* The public image functions: each encode call decodes one view, preprocesses it exactly as the
 * reference, runs the Swin encoder and refreshes the study's image embeddings. */
#include <stdlib.h>
#include <string.h>

#include "context.h"

r2gen_image r2gen_image_default(void)
{
    r2gen_image image;
    memset(&image, 0, sizeof image);
    image.struct_size = sizeof image;
    return image;
}

r2gen_image_options r2gen_image_options_default(void)
{
    r2gen_image_options options;
    memset(&options, 0, sizeof options);
    options.struct_size = sizeof options;
    options.gray16_mapping = R2GEN_GRAY16_CLAMP;
    return options;
}

r2gen_status r2gen_set_image_options(r2gen_ctx *ctx, const r2gen_image_options *given)
{
    if (!ctx) return R2GEN_ERR_INVALID_ARGUMENT;
    ctx_begin(ctx);
    r2gen_image_options copy = r2gen_image_options_default();
    const r2gen_image_options *options = &copy;
    if (!given || !copy_versioned_struct(&copy, sizeof copy, given, IMAGE_OPTIONS_SIZE_0_1))
        return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT,
                        "options is NULL or its struct_size is wrong: use r2gen_image_options_default()");
    switch (options->gray16_mapping) {
    case R2GEN_GRAY16_CLAMP: ctx->image.gray16 = IMAGE_GRAY16_CLAMP; break;
    case R2GEN_GRAY16_MINMAX: ctx->image.gray16 = IMAGE_GRAY16_MINMAX; break;
    case R2GEN_GRAY16_WINDOW:
        if (!(options->window_width >= 1.0) || options->window_center != options->window_center)
            return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT,
                            "window_width must be at least 1 (it is %g)", options->window_width);
        ctx->image.gray16 = IMAGE_GRAY16_WINDOW;
        ctx->image.window_center = options->window_center;
        ctx->image.window_width = options->window_width;
        break;
    default:
        return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT, "unknown gray16_mapping %d",
                        (int)options->gray16_mapping);
    }
    return R2GEN_OK;
}

/* Refresh the study embeddings from all views plus `extra` (a new view not yet added); on
 * success the new embeddings replace the old ones. */
static r2gen_status project_study(r2gen_ctx *ctx, const float *extra, error *err)
{
    const model *m = ctx->model;
    int n_views = ctx->n_views + (extra != NULL);
    const float **views = malloc((size_t)n_views * sizeof *views);
    float *embeddings = malloc((size_t)m->swin.n_tokens * m->proj.n_embd * sizeof *embeddings);
    r2gen_status status = R2GEN_OK;
    if (!views || !embeddings) status = error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    if (status == R2GEN_OK) {
        for (int i = 0; i < ctx->n_views; i++) views[i] = ctx->view_features[i];
        if (extra) views[n_views - 1] = extra;
        status = projector_apply(&m->proj, &ctx->cpu, views, n_views, m->swin.n_tokens,
                                 embeddings, err);
    }
    free(views);
    if (status != R2GEN_OK) {
        free(embeddings);
        return status;
    }
    free(ctx->embeddings);
    ctx->embeddings = embeddings;
    return R2GEN_OK;
}

static r2gen_status reserve_view(r2gen_ctx *ctx, error *err)
{
    if (ctx->n_views < ctx->views_capacity) return R2GEN_OK;
    int capacity = ctx->views_capacity ? ctx->views_capacity * 2 : 4;
    float **grown = realloc(ctx->view_features, (size_t)capacity * sizeof *grown);
    if (!grown) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    ctx->view_features = grown;
    ctx->views_capacity = capacity;
    return R2GEN_OK;
}

/* Preprocess, encode and add one decoded view. The study changes only when every step worked. */
static r2gen_status add_view(r2gen_ctx *ctx, const rgb_image *image, error *err)
{
    const swin_model *swin = &ctx->model->swin;
    size_t side = (size_t)swin->image_size;
    float *pixels = malloc(3 * side * side * sizeof *pixels);
    float *features = malloc((size_t)swin->n_tokens * swin->num_features * sizeof *features);
    r2gen_status status = R2GEN_OK;
    if (!pixels || !features) status = error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    if (status == R2GEN_OK)
        status = image_preprocess(image, swin->image_size, swin->image_mean, swin->image_std,
                                  pixels, err);
    if (status == R2GEN_OK) status = swin_encode(swin, &ctx->cpu, pixels, features, NULL, err);
    if (status == R2GEN_OK) status = reserve_view(ctx, err);
    if (status == R2GEN_OK) status = project_study(ctx, features, err);
    free(pixels);
    if (status != R2GEN_OK) {
        free(features);
        return status;
    }
    ctx->view_features[ctx->n_views++] = features;
    return R2GEN_OK;
}

static r2gen_status begin_image_call(r2gen_ctx *ctx)
{
    ctx_begin(ctx);
    if (!ctx->model->has_vision)
        return ctx_fail(ctx, R2GEN_ERR_UNSUPPORTED,
                        "this model has no vision part (a LLaMA-only file): images cannot be encoded");
    return R2GEN_OK;
}

static r2gen_status add_decoded_view(r2gen_ctx *ctx, r2gen_status decoded, rgb_image *image)
{
    r2gen_status status = decoded == R2GEN_OK ? add_view(ctx, image, &ctx->last_error) : decoded;
    rgb_image_free(image);
    return status;
}

r2gen_status r2gen_encode_image(r2gen_ctx *ctx, const r2gen_image *image)
{
    if (!ctx) return R2GEN_ERR_INVALID_ARGUMENT;
    r2gen_status status = begin_image_call(ctx);
    if (status != R2GEN_OK) return status;
    r2gen_image copy = r2gen_image_default();
    if (!image || !copy_versioned_struct(&copy, sizeof copy, image, IMAGE_SIZE_0_1))
        return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT,
                        "image is NULL or its struct_size is wrong: use r2gen_image_default()");
    image = &copy;
    if ((unsigned)image->format > R2GEN_PIXEL_RGBA8)
        return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT, "unknown pixel format %d",
                        (int)image->format);
    static const image_pixel_format formats[] = {IMAGE_GRAY8, IMAGE_GRAY16, IMAGE_RGB8,
                                                 IMAGE_RGBA8};
    rgb_image rgb = {0};
    status = image_from_raw(formats[image->format], image->width, image->height,
                            image->stride_bytes, image->pixels, &ctx->image, &rgb,
                            &ctx->last_error);
    return add_decoded_view(ctx, status, &rgb);
}

r2gen_status r2gen_encode_image_file(r2gen_ctx *ctx, const char *path)
{
    if (!ctx) return R2GEN_ERR_INVALID_ARGUMENT;
    r2gen_status status = begin_image_call(ctx);
    if (status != R2GEN_OK) return status;
    if (!path) return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT, "path is NULL");
    rgb_image rgb = {0};
    status = image_decode_file(path, &ctx->image, &rgb, &ctx->last_error);
    return add_decoded_view(ctx, status, &rgb);
}

r2gen_status r2gen_encode_image_memory(r2gen_ctx *ctx, const void *data, size_t size)
{
    if (!ctx) return R2GEN_ERR_INVALID_ARGUMENT;
    r2gen_status status = begin_image_call(ctx);
    if (status != R2GEN_OK) return status;
    rgb_image rgb = {0};
    status = image_decode_memory(data, size, &ctx->image, &rgb, &ctx->last_error);
    return add_decoded_view(ctx, status, &rgb);
}

void r2gen_clear_images(r2gen_ctx *ctx)
{
    if (ctx) ctx_clear_study(ctx);
}

int r2gen_n_views(const r2gen_ctx *ctx) { return ctx ? ctx->n_views : 0; }

r2gen_status r2gen_get_view_features(const r2gen_ctx *ctx, int view, float *out, size_t count,
                                     size_t *n_tokens, size_t *n_dims)
{
    if (!ctx) return R2GEN_ERR_INVALID_ARGUMENT;
    if (!ctx->model->has_vision) return R2GEN_ERR_UNSUPPORTED;
    if (view < 0 || view >= ctx->n_views) return R2GEN_ERR_INVALID_ARGUMENT;
    const swin_model *swin = &ctx->model->swin;
    return ctx_export_matrix(ctx->view_features[view], (size_t)swin->n_tokens,
                             (size_t)swin->num_features, out, count, n_tokens, n_dims);
}

r2gen_status r2gen_get_image_embeddings(const r2gen_ctx *ctx, float *out, size_t count,
                                        size_t *n_tokens, size_t *n_dims)
{
    if (!ctx) return R2GEN_ERR_INVALID_ARGUMENT;
    if (!ctx->model->has_vision) return R2GEN_ERR_UNSUPPORTED;
    if (!ctx->embeddings) return R2GEN_ERR_NO_IMAGE;
    return ctx_export_matrix(ctx->embeddings, (size_t)ctx->model->swin.n_tokens,
                             (size_t)ctx->model->proj.n_embd, out, count, n_tokens, n_dims);
}
