/* Keys and values of one generation: a shared prompt prefix plus a tree of beam histories.
 *
 * Beam search reorders its rows after every step; copying each row's cache to follow its parent
 * would move O(layers * positions * width) bytes per step. Instead every position is written once
 * into a slot of a pool and never moved:
 *   prefix position p (0 <= p < L)  -> slot p, shared by every row;
 *   decode step t, row r            -> slot L + t * max_rows + r,
 * and parent[t][r] records which row of step t - 1 row r continued. A row's history at step t is
 * the chain (t, r) -> (t - 1, parent[t][r]) -> ... -> (0, .) -> prefix, gathered once per step as
 * a list of slots that every layer's attention walks. */
#ifndef R2GEN_LLAMA_KV_CACHE_H
#define R2GEN_LLAMA_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "llama.h"

typedef struct kv_cache {
    kv_type type;
    const struct attention_kernels *attend; /* chosen at init */
    int n_layers, kv_dim, head_dim, max_rows, max_positions;
    int64_t n_slots;  /* 1 + max_rows * (max_positions - 1): the most a prefix of >= 1 needs */
    void *keys;       /* [n_layers][kv_dim / head_dim][n_slots][head_dim] of float or fp16: each
                         head's history contiguous, as attention reads it */
    void *values;     /* same */
    int32_t *parent;  /* [max_positions][max_rows]: row of step t - 1 that row r of step t continues */
    int32_t *chain;   /* [max_rows][max_positions]: slots of each row's history at the current step */
    int prefix_len;   /* L of the last prefill; 0 before any */
    int n_steps;      /* decode steps completed since the prefill */
    int prev_rows;    /* rows of the last completed step */
    int cur_rows;     /* rows of the step in progress */
} kv_cache;

/* Bytes kv_cache_init allocates. */
size_t kv_cache_size(int n_layers, int kv_dim, int max_rows, int max_positions, kv_type type);
r2gen_status kv_cache_init(kv_cache *c, int n_layers, int kv_dim, int head_dim, int max_rows,
                           int max_positions, kv_type type, error *err);
void kv_cache_free(kv_cache *c);

/* A new sequence whose prefix occupies slots 0 .. prefix_len - 1. */
void kv_cache_start(kv_cache *c, int prefix_len);

/* Validates a decode step (room left, row count, parents; NULL parents: row r continues row r),
 * records the parents and builds every
 * row's chain. Returns the history length (prefix + steps so far + this one) in *n_ctx. */
r2gen_status kv_cache_begin_step(kv_cache *c, const int32_t *parent_rows, int n_rows, int *n_ctx,
                                 error *err);
/* Marks the step begun last as complete. */
void kv_cache_end_step(kv_cache *c);
/* Slot of row r in the step in progress. */
int64_t kv_cache_step_slot(const kv_cache *c, int r);
/* The n_ctx slots of row r's history (after kv_cache_begin_step). */
const int32_t *kv_cache_chain(const kv_cache *c, int r);

/* Writes one position's keys and values (kv_dim floats each) into a slot. */
void kv_cache_store(kv_cache *c, int layer, int64_t slot, const float *k, const float *v);

/* The attention of one kv head for every row of the step in progress (after kv_cache_begin_step),
 * row r seeing the n_ctx slots of its chain. The prefix, shared by every row, is read once for
 * all of them.
 * scores[r * scores_stride + j] = scale * dot(q + r * q_stride, key of the chain's j-th slot). */
void kv_cache_scores(const kv_cache *c, int layer, int kv_head, const float *q, size_t q_stride,
                     int n_rows, int n_ctx, float scale, float *scores, size_t scores_stride);
/* out + r * out_stride = sum_j p[r * p_stride + j] * value of the chain's j-th slot (head_dim
 * floats per row). */
void kv_cache_mix_values(const kv_cache *c, int layer, int kv_head, const float *p, size_t p_stride,
                         int n_rows, int n_ctx, float *out, size_t out_stride);

#endif
