/*
 * libr2gen — R2GenGPT chest X-ray report generation on the CPU.
 *
 * One opaque context (r2gen_ctx) holds a loaded model and the state of one study. A study is one
 * or more views (images) added with r2gen_encode_image*; r2gen_generate_report writes the report.
 *
 * Conventions of the whole API:
 * - Every function that can fail returns an r2gen_status. R2GEN_OK is 0; other values name the
 *   kind of failure, and r2gen_last_error(ctx) gives a message saying what exactly went wrong.
 * - Output pointers are written only on success, unless a function says otherwise.
 * - Strings returned as `const char *` are owned by the library; strings returned through
 *   `char **` are owned by the caller and freed with r2gen_string_free.
 * - Parameter structs begin with `struct_size`. Get one from its *_default() function, change the
 *   fields you need, and pass its address: a library built before a field existed reads only the
 *   fields it knows, so programs built against an older header keep working.
 * - Threads: the loaded weights are immutable and shared. One context must be used by one thread
 *   at a time; make one context per thread with r2gen_ctx_fork (cheap: weights are shared and
 *   reference-counted). Functions without a context (version, status strings, defaults) are
 *   thread-safe.
 * - The library never prints, never exits and never aborts on bad input.
 */
#ifndef R2GEN_H
#define R2GEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(R2GEN_BUILDING_LIBRARY)
#define R2GEN_API __attribute__((visibility("default")))
#else
#define R2GEN_API
#endif

#define R2GEN_VERSION_MAJOR 0
#define R2GEN_VERSION_MINOR 1
#define R2GEN_VERSION_PATCH 0
/* Encoded as major * 10000 + minor * 100 + patch, for compile-time comparisons. */
#define R2GEN_VERSION_NUMBER \
    (R2GEN_VERSION_MAJOR * 10000 + R2GEN_VERSION_MINOR * 100 + R2GEN_VERSION_PATCH)

/* Status codes. Their numeric values never change once released; new codes are only appended. */
typedef enum r2gen_status {
    R2GEN_OK = 0,
    R2GEN_ERR_INVALID_ARGUMENT = 1, /* a NULL or out-of-range argument */
    R2GEN_ERR_IO = 2,               /* a file could not be opened, read or mapped */
    R2GEN_ERR_MODEL_FORMAT = 3,     /* a model file is malformed or lacks what the model needs */
    R2GEN_ERR_UNSUPPORTED = 4,      /* valid, but not supported (a tensor type, a GGUF version) */
    R2GEN_ERR_IMAGE = 5,            /* an image could not be decoded or is out of limits */
    R2GEN_ERR_OUT_OF_MEMORY = 6,
    R2GEN_ERR_NO_IMAGE = 7,         /* a report was asked for before any view was added */
    R2GEN_ERR_CANCELLED = 8,        /* a callback asked to stop */
    R2GEN_ERR_BUFFER_TOO_SMALL = 9, /* a caller's buffer cannot hold the result */
    R2GEN_ERR_INTERNAL = 10         /* a bug in libr2gen: please report it */
} r2gen_status;

typedef struct r2gen_ctx r2gen_ctx;

/* A short English description of a status ("invalid argument", ...); never NULL. */
R2GEN_API const char *r2gen_status_string(r2gen_status status);

/* Library version and build features, e.g. "0.1.0 (jpeg: libjpeg-turbo)". Static storage. */
R2GEN_API const char *r2gen_version(void);

/*
 * The message of the last failure on ctx. With ctx NULL: the last r2gen_load failure on the
 * calling thread. The string belongs to the library and stays valid until the next call that
 * fails on the same ctx (or thread). "" when there was no failure.
 */
R2GEN_API const char *r2gen_last_error(const r2gen_ctx *ctx);

/* Options of r2gen_load. Get them from r2gen_load_params_default(). */
typedef struct r2gen_load_params {
    size_t struct_size;   /* sizeof(r2gen_load_params), set by r2gen_load_params_default */
    const char *llm_path; /* a separate LLaMA GGUF for a vision-only model file; NULL when the
                             model file holds the LLaMA too. Borrowed: read during r2gen_load. */
    int n_threads;        /* compute threads of the context; 0 = all online CPUs */
} r2gen_load_params;

R2GEN_API r2gen_load_params r2gen_load_params_default(void);

/*
 * Load a model: one GGUF holding everything, or a vision GGUF plus params->llm_path, or a
 * LLaMA-only GGUF (text-only mode). Weights are memory-mapped, not copied. params may be NULL
 * for the defaults. On success *out_ctx is a new context, freed with r2gen_free. On failure
 * *out_ctx is NULL and r2gen_last_error(NULL) says why, naming the file and the first missing or
 * malformed tensor or key.
 */
R2GEN_API r2gen_status r2gen_load(const char *model_path, const r2gen_load_params *params,
                                  r2gen_ctx **out_ctx);

/*
 * A second context on the same loaded weights (shared, reference-counted: the model is unmapped
 * when the last context using it is freed). The new context has the same settings and an empty
 * study. Use one context per thread.
 */
R2GEN_API r2gen_status r2gen_ctx_fork(const r2gen_ctx *ctx, r2gen_ctx **out_ctx);

/* Free a context and everything it owns. NULL is allowed and does nothing. */
R2GEN_API void r2gen_free(r2gen_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* R2GEN_H */
