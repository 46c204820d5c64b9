/* R2GenGPT's projector: the element-wise mean of a study's view features (Swin last_hidden_state),
 * then llama_proj (Linear num_features -> n_embd, with bias), then layer_norm (LayerNorm n_embd).
 * Order as R2GenGPT's encode_img + test_step: stack(views).mean(0) -> llama_proj -> layer_norm. */
#ifndef R2GEN_VISION_PROJECTOR_H
#define R2GEN_VISION_PROJECTOR_H

#include "core/error.h"
#include "core/gguf.h"
#include "core/tensor.h"
#include "ops/compute.h"

typedef struct projector {
    int n_in;   /* r2gen.vision.num_features */
    int n_embd; /* r2gen.proj.n_embd */
    float eps;
    const tensor *weight; /* ne = (n_in, n_embd), any matmul type */
    const float *bias;
    const float *norm_weight, *norm_bias;
} projector;

/* Reads r2gen.proj.* (and r2gen.vision.num_features for the input width) and requires the tensors
 * with exact shapes; fails with R2GEN_ERR_MODEL_FORMAT naming the first bad key or tensor. Holds
 * no memory of its own: nothing to free. */
r2gen_status projector_load(const gguf_file *f, projector *p, error *err);

/* view_features: n_views arrays of n_tokens x n_in; embeddings: n_tokens x n_embd. */
r2gen_status projector_apply(const projector *p, const compute *cpu,
                             const float *const *view_features, int n_views, int n_tokens,
                             float *embeddings, error *err);

#endif
