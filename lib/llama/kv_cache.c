#include "kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "kernels/attention.h"
#include "kernels/quant.h"

static size_t elem_bytes(kv_type type) { return type == KV_F16 ? sizeof(uint16_t) : sizeof(float); }

static int64_t pool_slots(int max_rows, int max_positions)
{
    return 1 + (int64_t)max_rows * (max_positions - 1);
}

static size_t pool_bytes(int n_layers, int kv_dim, int max_rows, int max_positions, kv_type type)
{
    return (size_t)n_layers * (size_t)pool_slots(max_rows, max_positions) * (size_t)kv_dim *
           elem_bytes(type);
}

static size_t history_bytes(int max_rows, int max_positions)
{
    return (size_t)max_rows * (size_t)max_positions * sizeof(int32_t);
}

size_t kv_cache_size(int n_layers, int kv_dim, int max_rows, int max_positions, kv_type type)
{
    return 2 * pool_bytes(n_layers, kv_dim, max_rows, max_positions, type) +
           2 * history_bytes(max_rows, max_positions);
}

r2gen_status kv_cache_init(kv_cache *c, int n_layers, int kv_dim, int head_dim, int max_rows,
                           int max_positions, kv_type type, error *err)
{
    memset(c, 0, sizeof *c);
    c->type = type;
    c->attend = attention_kernels_select();
    c->n_layers = n_layers;
    c->kv_dim = kv_dim;
    c->head_dim = head_dim;
    c->max_rows = max_rows;
    c->max_positions = max_positions;
    c->n_slots = pool_slots(max_rows, max_positions);
    size_t pool = pool_bytes(n_layers, kv_dim, max_rows, max_positions, type);
    size_t history = history_bytes(max_rows, max_positions);
    c->keys = malloc(pool);
    c->values = malloc(pool);
    c->parent = malloc(history);
    c->chain = malloc(history);
    if (!c->keys || !c->values || !c->parent || !c->chain) {
        kv_cache_free(c);
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for a KV cache of %zu bytes",
                         2 * pool + 2 * history);
    }
    return R2GEN_OK;
}

void kv_cache_free(kv_cache *c)
{
    free(c->keys);
    free(c->values);
    free(c->parent);
    free(c->chain);
    memset(c, 0, sizeof *c);
}

void kv_cache_start(kv_cache *c, int prefix_len)
{
    c->prefix_len = prefix_len;
    c->n_steps = 0;
    c->prev_rows = 0;
    c->cur_rows = 0;
}

static int64_t slot_of(const kv_cache *c, int step, int row)
{
    return c->prefix_len + (int64_t)step * c->max_rows + row;
}

r2gen_status kv_cache_begin_step(kv_cache *c, const int32_t *parent_rows, int n_rows, int *n_ctx,
                                 error *err)
{
    int t = c->n_steps;
    if (c->prefix_len == 0)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "decode step before any prefill");
    if (n_rows < 1 || n_rows > c->max_rows)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "decode step of %d rows (session: 1..%d)",
                         n_rows, c->max_rows);
    if (c->prefix_len + t >= c->max_positions)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                         "decode step at position %d exceeds the session's %d positions",
                         c->prefix_len + t, c->max_positions);
    int32_t *parent = c->parent + (size_t)t * c->max_rows;
    for (int r = 0; r < n_rows; r++) {
        int from = t == 0 ? 0 : parent_rows ? parent_rows[r] : r;
        if (from < 0 || (t > 0 && from >= c->prev_rows))
            return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                             "decode row %d: parent row %d is not a row of the previous step (%d)",
                             r, from, c->prev_rows);
        parent[r] = from;
    }
    int len = c->prefix_len + t + 1;
    for (int r = 0; r < n_rows; r++) {
        int32_t *chain = c->chain + (size_t)r * c->max_positions;
        for (int p = 0; p < c->prefix_len; p++) chain[p] = p;
        /* Walk back from this step: the row at step s continued parent[s][row] at step s - 1. */
        int row = r;
        for (int s = t; s >= 0; s--) {
            chain[c->prefix_len + s] = (int32_t)slot_of(c, s, row);
            if (s > 0) row = c->parent[(size_t)s * c->max_rows + row];
        }
    }
    c->cur_rows = n_rows;
    *n_ctx = len;
    return R2GEN_OK;
}

void kv_cache_end_step(kv_cache *c)
{
    c->n_steps++;
    c->prev_rows = c->cur_rows;
}

int64_t kv_cache_step_slot(const kv_cache *c, int r) { return slot_of(c, c->n_steps, r); }

const int32_t *kv_cache_chain(const kv_cache *c, int r)
{
    return c->chain + (size_t)r * c->max_positions;
}

/* Element index of (layer, kv head, slot): a head's entries are contiguous, slot after slot. */
static size_t entry_offset(const kv_cache *c, int layer, int kv_head, int64_t slot)
{
    size_t heads = (size_t)(c->kv_dim / c->head_dim);
    return (((size_t)layer * heads + (size_t)kv_head) * (size_t)c->n_slots + (size_t)slot) *
           (size_t)c->head_dim;
}

static void store_row(const kv_cache *c, void *pool, int layer, int64_t slot, const float *x)
{
    for (int h = 0; h < c->kv_dim / c->head_dim; h++) {
        size_t at = entry_offset(c, layer, h, slot);
        const float *head = x + (size_t)h * c->head_dim;
        if (c->type == KV_F16) {
            uint16_t *dst = (uint16_t *)pool + at;
            for (int i = 0; i < c->head_dim; i++) dst[i] = f32_to_fp16(head[i]);
        } else {
            memcpy((float *)pool + at, head, (size_t)c->head_dim * sizeof(float));
        }
    }
}

void kv_cache_store(kv_cache *c, int layer, int64_t slot, const float *k, const float *v)
{
    store_row(c, c->keys, layer, slot, k);
    store_row(c, c->values, layer, slot, v);
}

/* Positions every row of the step shares: the prefix, slots 0 .. prefix_len - 1. */
static int shared_positions(const kv_cache *c, int n_ctx)
{
    return n_ctx < c->prefix_len ? n_ctx : c->prefix_len;
}

static int min_int(int a, int b) { return a < b ? a : b; }

/* One kv head's entries of a pool, as the attention kernels index them (slot * head_dim). */
static const void *head_entries(const kv_cache *c, const void *pool, int layer, int kv_head)
{
    return (const char *)pool + entry_offset(c, layer, kv_head, 0) * elem_bytes(c->type);
}

/* Both run in two kinds of kernel call: the shared prefix for up to KERNEL_MAX_ROWS rows at once
 * (each entry read once for all of them), then each row's own part of its chain. */

void kv_cache_scores(const kv_cache *c, int layer, int kv_head, const float *q, size_t q_stride,
                     int n_rows, int n_ctx, float scale, float *scores, size_t scores_stride)
{
    int hd = c->head_dim, shared = shared_positions(c, n_ctx), f16 = c->type == KV_F16;
    const void *keys = head_entries(c, c->keys, layer, kv_head);
    for (int r0 = 0; r0 < n_rows; r0 += KERNEL_MAX_ROWS)
        c->attend->scores(keys, f16, hd, kv_cache_chain(c, r0), shared, q + (size_t)r0 * q_stride,
                          q_stride, min_int(KERNEL_MAX_ROWS, n_rows - r0), scale,
                          scores + (size_t)r0 * scores_stride, scores_stride);
    for (int r = 0; r < n_rows; r++)
        c->attend->scores(keys, f16, hd, kv_cache_chain(c, r) + shared, n_ctx - shared,
                          q + (size_t)r * q_stride, q_stride, 1, scale,
                          scores + (size_t)r * scores_stride + shared, scores_stride);
}

void kv_cache_mix_values(const kv_cache *c, int layer, int kv_head, const float *p, size_t p_stride,
                         int n_rows, int n_ctx, float *out, size_t out_stride)
{
    int hd = c->head_dim, shared = shared_positions(c, n_ctx), f16 = c->type == KV_F16;
    const void *values = head_entries(c, c->values, layer, kv_head);
    for (int r = 0; r < n_rows; r++) memset(out + (size_t)r * out_stride, 0, (size_t)hd * sizeof(float));
    for (int r0 = 0; r0 < n_rows; r0 += KERNEL_MAX_ROWS)
        c->attend->mix(values, f16, hd, kv_cache_chain(c, r0), shared, p + (size_t)r0 * p_stride,
                       p_stride, min_int(KERNEL_MAX_ROWS, n_rows - r0), out + (size_t)r0 * out_stride,
                       out_stride);
    for (int r = 0; r < n_rows; r++)
        c->attend->mix(values, f16, hd, kv_cache_chain(c, r) + shared, n_ctx - shared,
                       p + (size_t)r * p_stride + shared, p_stride, 1, out + (size_t)r * out_stride,
                       out_stride);
}
