/* Swin Transformer image encoder (HF SwinModel semantics, transformers 4.30.2): one CHW float32
 * image in, `last_hidden_state` out (tokens of the last stage x num_features, after the final
 * LayerNorm). Weights are views into a GGUF file (names in docs/model-format.md). */
#ifndef R2GEN_VISION_SWIN_H
#define R2GEN_VISION_SWIN_H

#include <stdint.h>

#include "core/error.h"
#include "core/gguf.h"
#include "core/tensor.h"
#include "ops/compute.h"
#include "ops/matmul_bf16.h"

#define SWIN_MAX_STAGES 8

typedef struct swin_block {
    const float *norm1_weight, *norm1_bias;
    linear qkv;      /* query, key and value projections stacked: 3 x dim outputs per token */
    linear attn_out;
    float *rel_bias; /* [n_heads][t][t] (t = window^2): HF's bias table gathered per token pair */
    const float *norm2_weight, *norm2_bias;
    linear ffn_up, ffn_down;
} swin_block;

typedef struct swin_stage {
    int dim;        /* channels of this stage's tokens */
    int n_heads;
    int depth;
    int ffn_dim;    /* int(mlp_ratio * dim), as HF computes it */
    int side;       /* the token map is side x side */
    int window;     /* window side actually used: min(config window, side) */
    int shift;      /* shift of the odd blocks: window / 2, or 0 when the map fits in one window */
    swin_block *blocks;          /* depth blocks */
    /* [2][side^2]: map position of the r-th token in window order (window after window, row-major
     * inside), for the unshifted blocks and for the shifted ones (rolled by -shift) */
    int32_t *window_order[2];
    float *shift_mask;           /* [n_windows][window^2][window^2] 0 / -100, NULL without shift */
    /* patch merging at the end of the stage; has_merge is 0 for the last stage */
    int has_merge;
    const float *merge_norm_weight, *merge_norm_bias;
    linear merge_reduction;
} swin_stage;

typedef struct swin_model {
    int image_size;
    int patch_size;
    int embed_dim;
    int n_stages;
    int depths[SWIN_MAX_STAGES];
    int num_heads[SWIN_MAX_STAGES];
    int window_size;
    int num_features; /* width of last_hidden_state */
    int n_tokens;     /* tokens of last_hidden_state */
    float eps;
    float image_mean[3];
    float image_std[3];

    linear patch_embed; /* (3·p·p, C): the conv weight flattened as (channel, row, col) */
    const float *patch_norm_weight, *patch_norm_bias;
    swin_stage stages[SWIN_MAX_STAGES];
    const float *norm_weight, *norm_bias;
} swin_model;

/* Optional observer of intermediate results, for tests and debugging. `name` is one of
 * "patch_embeddings_conv", "hidden_states_N" (N = 0 .. n_stages; HF's hidden_states),
 * "stageS_blockB" (residual stream after each block) and "last_hidden_state". */
typedef struct swin_trace {
    void (*fn)(void *user, const char *name, const float *data, int64_t n_tokens, int64_t dim);
    void *user;
} swin_trace;

/* Reads the r2gen.vision.* configuration and requires every tensor with its exact shape: linear
 * weights of any matmul type, everything else f32; f32 and bf16 linear weights are also copied into
 * oneDNN's blocked layout (see ops/matmul_bf16.h), which is what the model owns. Fails with R2GEN_ERR_MODEL_FORMAT naming the
 * first bad key or tensor, R2GEN_ERR_UNSUPPORTED for geometries that would need padding. On
 * failure nothing needs freeing. */
r2gen_status swin_load(const gguf_file *f, swin_model *m, error *err);
void swin_free(swin_model *m);

/* pixels_chw: 3 x image_size x image_size, normalised. last_hidden: n_tokens x num_features.
 * trace may be NULL. */
r2gen_status swin_encode(const swin_model *m, const compute *cpu, const float *pixels_chw,
                         float *last_hidden, const swin_trace *trace, error *err);

#endif
