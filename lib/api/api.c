/* The public entry points of the context life cycle: status strings, errors, load, fork, free.
 * Nothing below lib/api knows about the ABI structs. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "context.h"

_Static_assert(R2GEN_IMAGE_MAX_SIDE == IMAGE_MAX_SIDE, "public and internal image limits agree");
_Static_assert(R2GEN_IMAGE_MAX_PIXELS == IMAGE_MAX_PIXELS, "public and internal image limits agree");

/* r2gen_load has no context to hold its error, so the reason of the last failed load lives in
 * thread-local storage: the only writable state of the library outside contexts. */
static _Thread_local error load_error;

const char *r2gen_status_string(r2gen_status status)
{
    switch (status) {
    case R2GEN_OK: return "ok";
    case R2GEN_ERR_INVALID_ARGUMENT: return "invalid argument";
    case R2GEN_ERR_IO: return "input/output error";
    case R2GEN_ERR_MODEL_FORMAT: return "malformed model file";
    case R2GEN_ERR_UNSUPPORTED: return "unsupported";
    case R2GEN_ERR_IMAGE: return "image error";
    case R2GEN_ERR_OUT_OF_MEMORY: return "out of memory";
    case R2GEN_ERR_NO_IMAGE: return "no image in the study";
    case R2GEN_ERR_CANCELLED: return "cancelled";
    case R2GEN_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case R2GEN_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *r2gen_version(void)
{
#ifdef R2GEN_HAVE_LIBJPEG
    return R2GEN_VERSION_STRING " (jpeg: libjpeg-turbo)";
#else
    return R2GEN_VERSION_STRING " (jpeg: stb_image, which differs from the reference's decoder)";
#endif
}

const char *r2gen_last_error(const r2gen_ctx *ctx)
{
    return ctx ? ctx->last_error.message : load_error.message;
}

r2gen_status ctx_fail(r2gen_ctx *ctx, r2gen_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(ctx->last_error.message, sizeof ctx->last_error.message, fmt, args);
    va_end(args);
    ctx->last_error.status = status;
    return status;
}

void ctx_begin(r2gen_ctx *ctx) { error_clear(&ctx->last_error); }

r2gen_status ctx_export_matrix(const float *matrix, size_t rows, size_t cols, float *out,
                               size_t count, size_t *n_rows, size_t *n_cols)
{
    if (n_rows) *n_rows = rows;
    if (n_cols) *n_cols = cols;
    if (!out) return R2GEN_OK;
    if (count < rows * cols) return R2GEN_ERR_BUFFER_TOO_SMALL;
    memcpy(out, matrix, rows * cols * sizeof *out);
    return R2GEN_OK;
}

int copy_versioned_struct(void *out, size_t ours, const void *given, size_t oldest)
{
    size_t size;
    memcpy(&size, given, sizeof size); /* every versioned struct starts with struct_size */
    if (size < oldest || size > ours) return 0;
    memcpy(out, given, size);
    memcpy(out, &ours, sizeof ours);
    return 1;
}

r2gen_load_params r2gen_load_params_default(void)
{
    r2gen_load_params params;
    memset(&params, 0, sizeof params);
    params.struct_size = sizeof params;
    return params;
}

/* Copy the caller's params over the defaults, reading only the fields its struct_size covers. */
static r2gen_status read_load_params(const r2gen_load_params *given, r2gen_load_params *out,
                                     error *err)
{
    *out = r2gen_load_params_default();
    if (!given) return R2GEN_OK;
    if (!copy_versioned_struct(out, sizeof *out, given, LOAD_PARAMS_SIZE_0_1))
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                         "r2gen_load_params.struct_size is %zu; use r2gen_load_params_default()",
                         given->struct_size);
    if (out->n_threads < 0 || out->n_threads > 1024)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "n_threads is %d", out->n_threads);
    return R2GEN_OK;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 1024 ? (int)n : 1;
}

static r2gen_status new_context(model *m, const compute *cpu, kv_type kv, r2gen_ctx **out,
                                error *err)
{
    r2gen_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    ctx->model = m;
    ctx->cpu = *cpu;
    ctx->kv = kv;
    ctx->image.gray16 = IMAGE_GRAY16_CLAMP;
    *out = ctx;
    return R2GEN_OK;
}

r2gen_status r2gen_load(const char *model_path, const r2gen_load_params *params,
                        r2gen_ctx **out_ctx)
{
    error *err = &load_error;
    error_clear(err);
    if (!out_ctx) return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "out_ctx is NULL");
    *out_ctx = NULL;
    if (!model_path) return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "model_path is NULL");
    r2gen_load_params p;
    r2gen_status status = read_load_params(params, &p, err);
    if (status != R2GEN_OK) return status;
    compute cpu = {p.n_threads ? p.n_threads : default_threads(), GEMM_ONEDNN, 1};
    model *m;
    status = model_load(model_path, p.llm_path, cpu.n_threads, &m, err);
    if (status != R2GEN_OK) return status;
    status = new_context(m, &cpu, p.kv_cache_f16 ? KV_F16 : KV_F32, out_ctx, err);
    if (status != R2GEN_OK) model_release(m);
    return status;
}

r2gen_status r2gen_ctx_fork(const r2gen_ctx *ctx, r2gen_ctx **out_ctx)
{
    if (!out_ctx || !ctx) {
        if (out_ctx) *out_ctx = NULL;
        return R2GEN_ERR_INVALID_ARGUMENT;
    }
    *out_ctx = NULL;
    error err;
    r2gen_status status = new_context(ctx->model, &ctx->cpu, ctx->kv, out_ctx, &err);
    if (status != R2GEN_OK) return status;
    model_retain(ctx->model);
    (*out_ctx)->image = ctx->image;
    return R2GEN_OK;
}

void ctx_clear_study(r2gen_ctx *ctx)
{
    for (int i = 0; i < ctx->n_views; i++) free(ctx->view_features[i]);
    free(ctx->view_features);
    free(ctx->embeddings);
    ctx->view_features = NULL;
    ctx->embeddings = NULL;
    ctx->n_views = ctx->views_capacity = 0;
}

void ctx_clear_generation(r2gen_ctx *ctx)
{
    llama_session_free(ctx->session);
    free(ctx->report_tokens);
    ctx->session = NULL;
    ctx->session_rows = ctx->session_positions = 0;
    ctx->report_tokens = NULL;
    ctx->n_report_tokens = 0;
}

void r2gen_free(r2gen_ctx *ctx)
{
    if (!ctx) return;
    ctx_clear_study(ctx);
    ctx_clear_generation(ctx);
    model_release(ctx->model);
    free(ctx);
}

void r2gen_string_free(char *s) { free(s); }
