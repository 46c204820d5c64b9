/* The LLaMA decoder: weights viewed in a GGUF mapping (llama.cpp's names and conventions), a
 * prefill over a sequence of input embeddings, and batched decode steps for parallel beams over a
 * KV cache that never copies on beam reordering (see kv_cache.h).
 *
 * Numerics follow HF transformers 4.30.2 LlamaForCausalLM in float32: RMSNorm, RoPE with the
 * float32 inv_freq and angles HF computes (on the interleaved pair layout of GGUF q/k rows),
 * attention scaled by 1/sqrt(head_dim) with a float32 softmax, SiLU-gated MLP, untied lm_head. */
#ifndef R2GEN_LLAMA_LLAMA_H
#define R2GEN_LLAMA_LLAMA_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/gguf.h"
#include "ops/compute.h"

typedef struct llama_config {
    int n_vocab, n_embd, n_layers, n_heads, n_kv_heads, head_dim, n_ff, n_ctx;
    float rms_eps, rope_base;
} llama_config;

/* Weights: tensor views into the GGUF mapping, which must outlive the model. */
typedef struct llama_model llama_model;

/* Reads the llama.* config keys and validates every tensor (shape; type f32/f16/bf16/q8_0/q4_0/
 * q4_K/q6_K for matrices including token_embd and output, f32 for norms). A missing or malformed
 * tensor or key fails with R2GEN_ERR_MODEL_FORMAT naming it. On CPUs with the packed kernels,
 * q4_0/q8_0/q4_K/q6_K projections are repacked (lib/ops/projection.h) on n_threads threads into
 * memory the model owns, and the file's pages of those tensors are given back. */
r2gen_status llama_load(const gguf_file *f, int n_threads, llama_model **out, error *err);
void llama_free(llama_model *m);
const llama_config *llama_get_config(const llama_model *m);

/* Embedding rows of token ids (dequantised from token_embd of any type) into out[n][n_embd].
 * An id outside [0, n_vocab) fails with R2GEN_ERR_INVALID_ARGUMENT. */
r2gen_status llama_embed_tokens(const llama_model *m, const int32_t *ids, size_t n, float *out,
                                error *err);

typedef enum kv_type { KV_F32, KV_F16 } kv_type;

/* KV cache + scratch for one generation; owned by one context, reused across generations.
 * The cache and the activations are allocated at creation; prefill and decode allocate only the
 * quantised copy of each product's input rows (n_rows * n_in * 5/4 bytes, freed at once).
 *
 * Session memory in bytes, with P = max_positions, R = max_rows, B = max(P, R),
 * C = min(P, LLAMA_PREFILL_CHUNK), e = 4 (KV_F32) or 2 (KV_F16), q = n_heads * head_dim,
 * kv = n_kv_heads * head_dim:
 *   KV cache   2 * n_layers * (1 + R * (P - 1)) * kv * e   (prefix once + one slot per row per step)
 *   history    2 * R * P * 4                              (parent table + per-row slot chains)
 *   rope       P * head_dim * 4                            (cos and sin of every position)
 *   activations B * (2 * n_embd + 2 * q + 2 * kv + 2 * n_ff) * 4 + B * 4 (positions)
 *   attention  n_heads * max(C, R) * P * 4 (scores)
 * llama_session_size() evaluates it; llama_session_bytes() reports what a session holds. */
#define LLAMA_PREFILL_CHUNK 64
typedef struct llama_session llama_session;

/* max_positions (prefix + generated) must not exceed n_ctx; max_rows >= 1. */
r2gen_status llama_session_create(const llama_model *m, int max_rows, int max_positions,
                                  kv_type type, llama_session **out, error *err);
void llama_session_free(llama_session *s);
size_t llama_session_size(const llama_config *c, int max_rows, int max_positions, kv_type type);
size_t llama_session_bytes(const llama_session *s);

/* Starts a new sequence: runs n positions of input embeddings (the shared prompt prefix) with a
 * causal mask from position 0, writes the logits of the LAST position to logits[n_vocab]
 * (optionally all positions to all_logits[n][n_vocab] if non-NULL, for tests). */
r2gen_status llama_prefill(llama_session *s, const compute *cpu, const float *embeddings, int n,
                           float *logits, float *all_logits, error *err);

/* llama_prefill that also copies, when non-NULL, the residual stream after every layer to
 * layer_outputs[n_layers][n][n_embd] and the final-norm output to final_norm[n][n_embd]. */
r2gen_status llama_prefill_traced(llama_session *s, const compute *cpu, const float *embeddings,
                                  int n, float *logits, float *all_logits, float *layer_outputs,
                                  float *final_norm, error *err);

/* One decode step for n_rows parallel sequences (beams) that all continue the prefix: row r feeds
 * token tokens[r] and continues the history of row parent_rows[r] of the PREVIOUS decode step
 * (ignored on the first decode step after prefill: every row continues the prefix; NULL means
 * row r continues row r, as a single greedy sequence does). Writes
 * logits[n_rows][n_vocab]. The rows run as ONE batched forward: each weight matrix is streamed
 * once per step for all of them. After a failed step the session needs a new prefill. */
r2gen_status llama_decode(llama_session *s, const compute *cpu, const int32_t *tokens,
                          const int32_t *parent_rows, int n_rows, float *logits, error *err);

#endif
