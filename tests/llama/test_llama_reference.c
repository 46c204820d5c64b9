/* The decoder against HF transformers' float32 outputs for the llama-tiny fixture: every position's
 * logits, the residual stream after each layer and the final norm, from the f32 conversion; then
 * the f16 / q8_0 / q4_0 conversions against the same reference within measured tolerances. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tiny_model.h"

#define N_POS 38

typedef struct reference {
    float *inputs, *logits, *layer_outputs, *final_norm;
} reference;

static int load_reference(reference *ref, const llama_config *c)
{
    ref->inputs = tiny_fixture("inputs_embeds.npy", (size_t)N_POS * c->n_embd);
    ref->logits = tiny_fixture("logits.npy", (size_t)N_POS * c->n_vocab);
    ref->layer_outputs = tiny_fixture("layer_outputs.npy", (size_t)c->n_layers * N_POS * c->n_embd);
    ref->final_norm = tiny_fixture("final_norm.npy", (size_t)N_POS * c->n_embd);
    return ref->inputs && ref->logits && ref->layer_outputs && ref->final_norm ? 0 : -1;
}

static void free_reference(reference *ref)
{
    free(ref->inputs);
    free(ref->logits);
    free(ref->layer_outputs);
    free(ref->final_norm);
}

/* Largest differences allowed for one weight type. */
typedef struct tolerance {
    double logits;      /* logits vs the reference */
    double activations; /* layer outputs and final norm vs the reference */
    double paths;       /* last logits of the one-row product path vs the many-row one */
} tolerance;

/* Runs a prefill of the fixture sequence through one conversion and checks it against the
 * reference. */
static void check_type(const char *type, const reference *ref, tolerance tol)
{
    tiny_model t;
    if (tiny_open(type, &t) != 0) {
        CHECK(0, "cannot open the %s conversion", type);
        return;
    }
    const llama_config *c = llama_get_config(t.model);
    compute cpu = tiny_cpu();
    error err = {0};
    llama_session *s = NULL;
    size_t n_act = (size_t)N_POS * c->n_embd;
    float *logits = malloc(sizeof(float) * c->n_vocab);
    float *all_logits = malloc(sizeof(float) * N_POS * c->n_vocab);
    float *layer_outputs = malloc(sizeof(float) * c->n_layers * n_act);
    float *final_norm = malloc(sizeof(float) * n_act);
    r2gen_status st = llama_session_create(t.model, 1, N_POS, KV_F32, &s, &err);
    if (st == R2GEN_OK)
        st = llama_prefill_traced(s, &cpu, ref->inputs, N_POS, logits, all_logits, layer_outputs,
                                  final_norm, &err);
    CHECK(st == R2GEN_OK, "%s prefill: %s", type, err.message);
    if (st == R2GEN_OK) {
        double d_logits = max_abs_diff(all_logits, ref->logits, (size_t)N_POS * c->n_vocab);
        double d_layers = max_abs_diff(layer_outputs, ref->layer_outputs, c->n_layers * n_act);
        double d_norm = max_abs_diff(final_norm, ref->final_norm, n_act);
        double d_last = max_abs_diff(logits, ref->logits + (size_t)(N_POS - 1) * c->n_vocab, c->n_vocab);
        printf("%-5s max |diff| vs reference: logits %.3g, layer outputs %.3g, final norm %.3g\n",
               type, d_logits, d_layers, d_norm);
        CHECK(d_logits <= tol.logits, "%s logits differ by %g (tolerance %g)", type, d_logits,
              tol.logits);
        CHECK(d_last <= tol.logits, "%s last-position logits differ by %g", type, d_last);
        CHECK(d_layers <= tol.activations, "%s layer outputs differ by %g (tolerance %g)", type,
              d_layers, tol.activations);
        CHECK(d_norm <= tol.activations, "%s final norm differs by %g (tolerance %g)", type, d_norm,
              tol.activations);
    }
    /* The prefill without all_logits takes the one-row product path for the last position; for
     * quantised weights that path quantises the activations too, so it differs a little. */
    float *last = malloc(sizeof(float) * c->n_vocab);
    if (st == R2GEN_OK) st = llama_prefill(s, &cpu, ref->inputs, N_POS, last, NULL, &err);
    CHECK(st == R2GEN_OK, "%s plain prefill: %s", type, err.message);
    if (st == R2GEN_OK) {
        double d = max_abs_diff(last, logits, c->n_vocab);
        printf("%-5s one-row vs many-row path, last logits: %.3g\n", type, d);
        CHECK(d <= tol.paths, "%s: last logits of the one-row path differ by %g", type, d);
    }
    free(last);
    free(logits);
    free(all_logits);
    free(layer_outputs);
    free(final_norm);
    llama_session_free(s);
    tiny_close(&t);
}

/* Row 0 of the fixture input is embed_tokens[1] (<s>); the embedding table holds f16-exact values,
 * so every conversion that keeps them as floats reproduces it exactly. */
static void check_embedding(const char *type, const reference *ref, double tol)
{
    tiny_model t;
    if (tiny_open(type, &t) != 0) {
        CHECK(0, "cannot open the %s conversion", type);
        return;
    }
    const llama_config *c = llama_get_config(t.model);
    float *row = malloc(sizeof(float) * c->n_embd);
    error err = {0};
    int32_t bos = 1, bad = c->n_vocab;
    CHECK(llama_embed_tokens(t.model, &bos, 1, row, &err) == R2GEN_OK, "%s", err.message);
    double d = max_abs_diff(row, ref->inputs, c->n_embd);
    printf("%-5s embedding of <s> vs reference: %.3g\n", type, d);
    CHECK(d <= tol, "%s embedding of <s> differs by %g", type, d);
    CHECK(llama_embed_tokens(t.model, &bad, 1, row, &err) == R2GEN_ERR_INVALID_ARGUMENT,
          "token id n_vocab accepted");
    free(row);
    tiny_close(&t);
}

int main(void)
{
    tiny_model t;
    reference ref = {0};
    if (tiny_open("f32", &t) != 0) return 1;
    llama_config c = *llama_get_config(t.model);
    tiny_close(&t);
    CHECK(c.n_vocab == 32000 && c.n_embd == 64 && c.n_layers == 2 && c.n_heads == 4 &&
              c.n_kv_heads == 4 && c.head_dim == 16 && c.n_ff == 172 && c.n_ctx == 512 &&
              c.rope_base == 10000.0f && c.rms_eps == 1e-5f,
          "unexpected llama-tiny config");
    if (load_reference(&ref, &c) != 0) return 1;

    /* Tolerances: f32 is the reference mode (1e-4 per the fixture); the others were measured
     * (see the printed diffs) and given 2-3x headroom. */
    check_type("f32", &ref, (tolerance){1e-4, 1e-4, 1e-4});
    check_type("f16", &ref, (tolerance){2e-2, 1e-2, 1e-4});
    check_type("q8_0", &ref, (tolerance){0.4, 0.15, 0.1});
    check_type("q4_0", &ref, (tolerance){5.0, 2.5, 0.15});
    check_embedding("f32", &ref, 0.0);
    check_embedding("f16", &ref, 0.0);
    check_embedding("q8_0", &ref, 2e-2);
    check_embedding("q4_0", &ref, 0.3);
    free_reference(&ref);
    return check_summary();
}
