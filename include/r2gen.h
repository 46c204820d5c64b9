/*
 * libr2gen — R2GenGPT chest X-ray report generation on the CPU.
 *
 * One opaque context (r2gen_ctx) holds a loaded model and the state of one study. A study is one
 * or more views (images) added with r2gen_encode_image*; r2gen_generate_report writes the report.
 *
 * Conventions of the whole API:
 * - Every function that can fail returns an r2gen_status. R2GEN_OK is 0; other values name the
 *   kind of failure, and r2gen_last_error(ctx) gives a message saying what exactly went wrong.
 *   Functions that take a const context (the r2gen_get_* queries, r2gen_tokenize,
 *   r2gen_ctx_fork) report through their status alone and leave r2gen_last_error unchanged.
 * - Output pointers are written only on success, unless a function says otherwise.
 * - Strings returned as `const char *` are owned by the library; strings returned through
 *   `char **` are owned by the caller and freed with r2gen_string_free.
 * - Parameter structs begin with `struct_size`. Get one from its *_default() function, change the
 *   fields you need, and pass its address: a library built before a field existed reads only the
 *   fields it knows, so programs built against an older header keep working.
 *   ABI rule (README, "ABI policy"): a struct only grows at its end, and the library reads only
 *   the struct_size bytes the caller's program knows. *_default() returns the struct by value, so
 *   a program built against an older header reserves the older size for the result: when a
 *   struct grows, its *_default() functions get a new default symbol version in lib/r2gen.map
 *   returning the new layout, and the old version (R2GEN_0) keeps returning the old layout, as
 *   glibc does. The function names never change.
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
    int kv_cache_f16;     /* 1 = keep the attention cache in f16 (half the memory, results move
                             slightly); 0 (default) = f32, which reproduces the reference */
} r2gen_load_params;

R2GEN_API r2gen_load_params r2gen_load_params_default(void);

/*
 * Load a model: one GGUF holding everything, or a vision GGUF plus params->llm_path, or a
 * LLaMA-only GGUF (text-only mode). Weights are memory-mapped; the layers that run faster in
 * another layout (Swin's linear layers; q4_0, q8_0, q4_K and q6_K LLaMA matrices on AVX2 and
 * AVX-512 VNNI CPUs) are repacked once, on params->n_threads threads, and their pages of the file
 * are given back, so memory holds one copy of the weights. params may be NULL for the defaults. On success
 * *out_ctx is a new context, freed with r2gen_free. On failure *out_ctx is NULL and
 * r2gen_last_error(NULL) says why, naming the file and the first missing or malformed tensor or
 * key.
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

/* ------------------------------------------------------------------------------------------
 * Images: each r2gen_encode_image* call adds one view to the context's current study.
 * Views are encoded at once (Swin); r2gen_generate_report uses the mean of all views added since
 * the last r2gen_clear_images, as R2GenGPT does for IU-Xray's two views. A failed call leaves the
 * views added before it intact. A model loaded without a vision part (a LLaMA-only GGUF) returns
 * R2GEN_ERR_UNSUPPORTED from every image function.
 * ------------------------------------------------------------------------------------------ */

/* Largest accepted image side and pixel count, checked before any pixel memory is allocated. */
#define R2GEN_IMAGE_MAX_SIDE 16384
#define R2GEN_IMAGE_MAX_PIXELS (1 << 26)

/* Layout of caller pixels. GRAY16 samples are native-endian uint16 (what a DICOM decoder gives). */
typedef enum r2gen_pixel_format {
    R2GEN_PIXEL_GRAY8 = 0,
    R2GEN_PIXEL_GRAY16 = 1,
    R2GEN_PIXEL_RGB8 = 2,
    R2GEN_PIXEL_RGBA8 = 3 /* alpha is ignored */
} r2gen_pixel_format;

/* Raw pixels of one view. Borrowed: read during the call only. */
typedef struct r2gen_image {
    size_t struct_size;         /* sizeof(r2gen_image) */
    r2gen_pixel_format format;
    int width, height;          /* 1 .. R2GEN_IMAGE_MAX_SIDE */
    ptrdiff_t stride_bytes;     /* bytes from one row to the next; 0 = tightly packed */
    const void *pixels;
} r2gen_image;

R2GEN_API r2gen_image r2gen_image_default(void);

/* How 16-bit grey samples become the model's 8-bit input.
 * CLAMP (default): min(v, 255), which is what the reference (PIL's convert("RGB")) computed, so
 *   results reproduce R2GenGPT's on the same files; data above 255 turns white.
 * WINDOW: DICOM's linear VOI window with window_center / window_width (width >= 1) onto 0..255.
 * MINMAX: the image's own minimum..maximum onto 0..255.
 * 16-bit colour PNGs always keep the high byte of each sample, as the reference did. */
typedef enum r2gen_gray16_mapping {
    R2GEN_GRAY16_CLAMP = 0,
    R2GEN_GRAY16_WINDOW = 1,
    R2GEN_GRAY16_MINMAX = 2
} r2gen_gray16_mapping;

typedef struct r2gen_image_options {
    size_t struct_size; /* sizeof(r2gen_image_options) */
    r2gen_gray16_mapping gray16_mapping;
    double window_center, window_width; /* R2GEN_GRAY16_WINDOW only */
} r2gen_image_options;

R2GEN_API r2gen_image_options r2gen_image_options_default(void);

/* Set how the context's later encode calls map 16-bit grey data (files and raw pixels). */
R2GEN_API r2gen_status r2gen_set_image_options(r2gen_ctx *ctx, const r2gen_image_options *options);

/* Add one view from raw pixels, an image file (PNG, JPEG, BMP, PGM/PPM; 8 or 16 bit) or an
 * encoded image in memory. */
R2GEN_API r2gen_status r2gen_encode_image(r2gen_ctx *ctx, const r2gen_image *image);
R2GEN_API r2gen_status r2gen_encode_image_file(r2gen_ctx *ctx, const char *path);
R2GEN_API r2gen_status r2gen_encode_image_memory(r2gen_ctx *ctx, const void *data, size_t size);

/* Start a new study: forget every view. */
R2GEN_API void r2gen_clear_images(r2gen_ctx *ctx);

/* Number of views in the current study. */
R2GEN_API int r2gen_n_views(const r2gen_ctx *ctx);

/*
 * One view's Swin last_hidden_state (row-major n_tokens x n_dims, 49 x 1024 for Swin-base), or
 * the study's image embeddings (mean over views -> llama_proj -> layer_norm, n_tokens x n_embd),
 * for debugging conversions and caching. out may be NULL to ask only the shape; count is the
 * capacity of out in floats: a smaller count returns R2GEN_ERR_BUFFER_TOO_SMALL and writes
 * nothing to out. n_tokens and n_dims may be NULL.
 */
R2GEN_API r2gen_status r2gen_get_view_features(const r2gen_ctx *ctx, int view, float *out,
                                               size_t count, size_t *n_tokens, size_t *n_dims);
R2GEN_API r2gen_status r2gen_get_image_embeddings(const r2gen_ctx *ctx, float *out, size_t count,
                                                  size_t *n_tokens, size_t *n_dims);

/* ------------------------------------------------------------------------------------------
 * Text and generation.
 * ------------------------------------------------------------------------------------------ */

/* Called after every decoding step; return non-zero to cancel (the call then returns
 * R2GEN_ERR_CANCELLED and the context stays usable). */
typedef int (*r2gen_progress_callback)(void *user_data, int step, int max_steps);

/* Greedy search and sampling only: called with the text of every new token as it is generated
 * (piece is not NUL-terminated and valid only during the call; control tokens give len 0).
 * Return non-zero to cancel. */
typedef int (*r2gen_token_callback)(void *user_data, int32_t token_id, const char *piece,
                                    size_t len);

/* Decoding settings. r2gen_generate_params_default() gives R2GenGPT's MIMIC-CXR settings. */
typedef struct r2gen_generate_params {
    size_t struct_size;       /* sizeof(r2gen_generate_params) */
    int num_beams;            /* 1 = greedy search (or sampling); default 3 */
    int min_new_tokens;       /* </s> is not allowed before this many new tokens; default 80 */
    int max_new_tokens;       /* default 120 */
    float repetition_penalty; /* 1.0 = off; default 2.0 */
    float length_penalty;     /* beam search: score = sum of log-probs / length^lp; default 2.0 */
    int do_sample;            /* 1 = sample instead of searching (needs num_beams == 1) */
    float temperature;        /* sampling; default 1.0 */
    int top_k;                /* sampling; 0 = off */
    float top_p;              /* sampling; 1.0 = off */
    uint64_t seed;            /* sampling: the same seed gives the same report */
    int ignore_eos;           /* 1 = never stop at </s> (for benchmarks) */
    r2gen_progress_callback progress;
    r2gen_token_callback on_token;
    void *user_data;          /* passed to both callbacks */
    /* The prompt around the image: NULL = the model's (R2GenGPT's "Human: <Img>" ... "</Img>
     * Generate a comprehensive and detailed diagnosis report for this chest xray image.
     * \nAssistant:"). Otherwise a text containing "<ImageHere>" once, where the image
     * embeddings go. Borrowed during the call. */
    const char *prompt;
} r2gen_generate_params;

typedef enum r2gen_preset {
    R2GEN_PRESET_MIMIC_CXR = 0, /* 3 beams, 80..120 new tokens, penalties 2.0 */
    R2GEN_PRESET_IU_XRAY = 1    /* 3 beams, 40..100 new tokens, penalties 2.0 */
} r2gen_preset;

R2GEN_API r2gen_generate_params r2gen_generate_params_default(void);
/* The settings R2GenGPT used for a data set; an unknown preset gives the default. */
R2GEN_API r2gen_generate_params r2gen_generate_params_preset(r2gen_preset preset);

/* Tokenise text with the model's Llama-2 tokenizer, adding no special tokens. ids may be NULL to
 * ask only the count; capacity is the size of ids: when too small, R2GEN_ERR_BUFFER_TOO_SMALL,
 * *n_ids still tells the count needed, and nothing is written to ids. */
R2GEN_API r2gen_status r2gen_tokenize(const r2gen_ctx *ctx, const char *text, int32_t *ids,
                                      size_t capacity, size_t *n_ids);

/*
 * Write the report of the current study: R2GenGPT's prompt with the image embeddings, the
 * language model's generation with params (NULL = defaults), and R2GenGPT's clean-up of the text.
 * On success *report is a new NUL-terminated UTF-8 string owned by the caller
 * (r2gen_string_free). R2GEN_ERR_NO_IMAGE when the study has no view.
 */
R2GEN_API r2gen_status r2gen_generate_report(r2gen_ctx *ctx, const r2gen_generate_params *params,
                                             char **report);

/*
 * Run the language model on caller-given input embeddings (n_positions x n_embd floats, used
 * as-is: include the <s> embedding yourself) and decode the new tokens as a report. For custom
 * prompts, other encoders and testing; works in text-only mode. params->prompt is ignored.
 */
R2GEN_API r2gen_status r2gen_generate_from_embeddings(r2gen_ctx *ctx, const float *embeddings,
                                                      size_t n_positions,
                                                      const r2gen_generate_params *params,
                                                      char **report);

/*
 * The token ids of the last generation on ctx: the new tokens (without the leading <s> that
 * transformers 4.30.2 puts in front), ending with </s> (id 2) when generation stopped on it.
 * The array belongs to the context and is valid until the next call on it.
 */
R2GEN_API r2gen_status r2gen_get_report_tokens(const r2gen_ctx *ctx, const int32_t **ids,
                                               size_t *n_ids);

/* The text of token ids as transformers 4.30.2's LlamaTokenizer.decode gives it (special tokens
 * kept as "<s>", "</s>", "<unk>"). *text is a new NUL-terminated string owned by the caller
 * (r2gen_string_free). R2GEN_ERR_INVALID_ARGUMENT for an id outside the vocabulary. */
R2GEN_API r2gen_status r2gen_detokenize(const r2gen_ctx *ctx, const int32_t *ids, size_t n_ids,
                                        char **text);

/* Embeddings of token ids (n_ids x r2gen_n_embd floats into out, whose capacity is count
 * floats), to build input sequences for r2gen_generate_from_embeddings. */
R2GEN_API r2gen_status r2gen_get_token_embeddings(const r2gen_ctx *ctx, const int32_t *ids,
                                                  size_t n_ids, float *out, size_t count);

/* The embedding width of the language model (4096 for Llama-2-7B) and its vocabulary size. */
R2GEN_API int r2gen_n_embd(const r2gen_ctx *ctx);
R2GEN_API int r2gen_n_vocab(const r2gen_ctx *ctx);

/* Free a string returned by the library. NULL is allowed. */
R2GEN_API void r2gen_string_free(char *s);

#ifdef __cplusplus
}
#endif

#endif /* R2GEN_H */
