/* The context behind the opaque r2gen_ctx: one loaded model (shared), the settings of this
 * context, the current study and the state of the last generation. Used by one thread at a time. */
#ifndef R2GEN_API_CONTEXT_H
#define R2GEN_API_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "image/image.h"
#include "llama/llama.h"
#include "model.h"
#include "ops/compute.h"
#include "r2gen.h"

struct r2gen_ctx {
    model *model;
    compute cpu;
    kv_type kv;
    error last_error;
    image_options image;

    /* the current study */
    int n_views;
    int views_capacity;
    float **view_features; /* n_views arrays of swin.n_tokens x swin.num_features */
    float *embeddings;     /* swin.n_tokens x proj.n_embd for the current views; NULL when none */

    /* generation */
    llama_session *session; /* grown on demand, reused across reports */
    int session_rows;
    int session_positions;
    int32_t *report_tokens;
    size_t n_report_tokens;
};

/* The sizes of the parameter structs as libr2gen 0.1.0 released them: the end of their last
 * field then. A struct only grows at its end, so these never change; a caller's struct_size may be
 * anything from this up to the library's own sizeof. */
#define LOAD_PARAMS_SIZE_0_1 (offsetof(r2gen_load_params, kv_cache_f16) + sizeof(int))
#define IMAGE_SIZE_0_1 (offsetof(r2gen_image, pixels) + sizeof(const void *))
#define IMAGE_OPTIONS_SIZE_0_1 (offsetof(r2gen_image_options, window_width) + sizeof(double))
#define GENERATE_PARAMS_SIZE_0_1 (offsetof(r2gen_generate_params, prompt) + sizeof(const char *))

/* Copy a caller's versioned struct into `out`, which holds the library's defaults (`ours`
 * bytes): the fields the caller's struct_size covers replace the defaults. Returns 0 when
 * struct_size is outside [oldest, ours] (a caller built against an unknown newer header, or not
 * using the *_default() functions). */
int copy_versioned_struct(void *out, size_t ours, const void *given, size_t oldest);

/* Record a failure on the context; returns status. */
r2gen_status ctx_fail(r2gen_ctx *ctx, r2gen_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Start a call on ctx: clears the last error. */
void ctx_begin(r2gen_ctx *ctx);

/* Free the study's views and embeddings. */
void ctx_clear_study(r2gen_ctx *ctx);

/* Free the generation state (session and report tokens). */
void ctx_clear_generation(r2gen_ctx *ctx);

/* Copy up to `count` floats of a rows x cols matrix to out, the shape to n_rows/n_cols (either
 * may be NULL): the shared logic of the r2gen_get_* introspection functions. */
r2gen_status ctx_export_matrix(const float *matrix, size_t rows, size_t cols, float *out,
                               size_t count, size_t *n_rows, size_t *n_cols);

#endif
