#include "projector.h"

#include <stdlib.h>
#include <string.h>

#include "ops/matmul.h"
#include "ops/ops.h"

static r2gen_status load_vector(const gguf_file *f, const char *name, int64_t n,
                                const float **out, error *err)
{
    const tensor *t;
    r2gen_status status = gguf_require_tensor(f, name, GGUF_ALLOW_F32, 1, &n, &t, err);
    if (status == R2GEN_OK) *out = t->data;
    return status;
}

r2gen_status projector_load(const gguf_file *f, projector *p, error *err)
{
    uint32_t n_in, n_embd;
    memset(p, 0, sizeof *p);
    r2gen_status status = gguf_get_u32(f, "r2gen.vision.num_features", &n_in, err);
    if (status == R2GEN_OK) status = gguf_get_u32(f, "r2gen.proj.n_embd", &n_embd, err);
    if (status == R2GEN_OK) status = gguf_get_f32(f, "r2gen.proj.layer_norm_eps", &p->eps, err);
    if (status != R2GEN_OK) return status;
    if (n_in == 0 || n_in > 1u << 20 || n_embd == 0 || n_embd > 1u << 20 || !(p->eps > 0.0f))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "r2gen.proj: invalid sizes %u -> %u or layer_norm_eps", n_in, n_embd);
    p->n_in = (int)n_in;
    p->n_embd = (int)n_embd;
    int64_t ne[2] = {n_in, n_embd};
    status = gguf_require_tensor(f, "r2gen.proj.weight", GGUF_ALLOW_ANY, 2, ne, &p->weight, err);
    if (status == R2GEN_OK) status = load_vector(f, "r2gen.proj.bias", n_embd, &p->bias, err);
    if (status == R2GEN_OK)
        status = load_vector(f, "r2gen.proj.norm.weight", n_embd, &p->norm_weight, err);
    if (status == R2GEN_OK)
        status = load_vector(f, "r2gen.proj.norm.bias", n_embd, &p->norm_bias, err);
    return status;
}

r2gen_status projector_apply(const projector *p, const compute *cpu,
                             const float *const *view_features, int n_views, int n_tokens,
                             float *embeddings, error *err)
{
    if (n_views < 1 || n_tokens < 1)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "projector: %d views of %d tokens",
                         n_views, n_tokens);
    size_t n = (size_t)n_tokens * p->n_in;
    float *mean = malloc(n * sizeof *mean);
    if (!mean) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for the view mean");
    /* torch.stack(views).mean(0): sum in view order, then divide by the count. */
    memcpy(mean, view_features[0], n * sizeof *mean);
    for (int v = 1; v < n_views; v++) add(mean, view_features[v], (int64_t)n);
    for (size_t i = 0; i < n; i++) mean[i] /= (float)n_views;
    r2gen_status status = matmul(cpu, embeddings, mean, n_tokens, p->weight, p->bias, err);
    free(mean);
    if (status != R2GEN_OK) return status;
    layer_norm(embeddings, embeddings, n_tokens, p->n_embd, p->norm_weight, p->norm_bias, p->eps);
    return R2GEN_OK;
}
