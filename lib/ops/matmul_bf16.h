/* oneDNN matmul primitives: the bf16 route of matmul (internal to lib/ops/matmul.c), and Linear
 * layers whose weights are reordered once, at load, into oneDNN's blocked layout, so that the
 * large-m products of the Swin encoder run without per-call weight repacking or primitive
 * creation and with bias, GELU and residual additions fused into the product. */
#ifndef R2GEN_OPS_MATMUL_BF16_H
#define R2GEN_OPS_MATMUL_BF16_H

#include <dnnl.h>

#include "matmul.h"

/* y[m][n_out] = x[m][n_in] · Wᵀ for bf16 W, x rounded to bf16, f32 accumulation; no bias. */
r2gen_status matmul_bf16_onednn(const compute *cpu, float *y, const float *x, int64_t m,
                                const tensor *w, error *err);

/* What a Linear layer does with its product p = x · Wᵀ + bias. */
typedef enum linear_epilogue {
    LINEAR_STORE,      /* y = p */
    LINEAR_ACCUMULATE, /* y += p: a residual connection */
    LINEAR_GELU,       /* y = gelu_erf(p) */
} linear_epilogue;

#define LINEAR_MAX_PARTS 3

/* A Linear layer made of 1 .. LINEAR_MAX_PARTS weight tensors stacked by rows (Swin's query, key
 * and value projections become one product of 3 x dim outputs). When all parts are f32, or all
 * bf16 on a CPU with AVX512_BF16, `packed` holds them in the layout oneDNN's matmul chose for
 * `m` rows; otherwise (other types) the layer runs through matmul() part by part. */
typedef struct linear {
    int n_parts;
    const tensor *parts[LINEAR_MAX_PARTS];
    const float *part_biases[LINEAR_MAX_PARTS];
    int64_t n_in, n_out; /* n_out of all parts together */
    float *bias;         /* n_out values, owned; NULL for layers without bias */
    tensor_type packed_type;        /* TENSOR_F32 or TENSOR_BF16 when packed */
    void *packed;                   /* owned; NULL when not packed */
    dnnl_memory_desc_t packed_desc; /* its layout */
} linear;

/* Biases are all present or all NULL. The tensors must outlive the layer. */
r2gen_status linear_init(linear *l, int n_parts, const tensor *const *parts,
                         const float *const *biases, int64_t m, error *err);
void linear_free(linear *l);

/* The primitives one encode call creates (one per distinct product shape and epilogue, reused by
 * every block of a stage) and its scratch buffers. Owned by the caller of the products, so that
 * loaded weights stay immutable and shareable between contexts. */
typedef struct linear_primitive {
    int64_t m;
    const linear *layer; /* a layer with this shape, type and layout */
    linear_epilogue epilogue;
    int bf16_out;
    dnnl_primitive_t primitive; /* NULL: oneDNN refused the shape, matmul() is used */
} linear_primitive;

typedef struct linear_runner {
    const compute *cpu;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    linear_primitive *primitives;
    int n_primitives, capacity;
    uint16_t *activations_bf16; /* x rounded for bf16 products */
    float *scratch;             /* matmul() results before they are combined into y */
    size_t activations_size, scratch_size; /* in elements */
} linear_runner;

r2gen_status linear_runner_init(linear_runner *r, const compute *cpu, error *err);
void linear_runner_free(linear_runner *r);

/* y[m][n_out] (epilogue) x[m][n_in] · Wᵀ + bias. */
r2gen_status linear_forward(linear_runner *r, const linear *l, float *y, const float *x,
                            int64_t m, linear_epilogue epilogue, error *err);

/* y += down(gelu_erf(up(x))): the transformer MLP. `hidden` holds m x up->n_out floats; when both
 * products run in bf16 the hidden activations are handed over as bf16 in that same buffer. */
r2gen_status linear_mlp(linear_runner *r, const linear *up, const linear *down, float *y,
                        const float *x, int64_t m, float *hidden, error *err);

#endif
