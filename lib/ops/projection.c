#include "projection.h"

#include <omp.h>
#include <stdlib.h>

#include "matmul.h"

/* Whether part i can go into packed tiles: a type the packed kernels run on this CPU, the
 * projection's n_in and whole tiles of rows. */
static int packable(const projection *p, int i)
{
    const tensor *t = p->parts[i];
    return t->ne[0] == p->n_in && tensor_n_rows(t) % PACKED_TILE_ROWS == 0 &&
           packed_supported(t->type, p->n_in);
}

static int64_t part_tiles(const projection *p, int i)
{
    return tensor_n_rows(p->parts[i]) / PACKED_TILE_ROWS;
}

void projection_init(projection *p, int n_parts, const tensor *const *parts)
{
    *p = (projection){.n_parts = n_parts, .n_in = parts[0]->ne[0]};
    for (int i = 0; i < n_parts; i++) p->parts[i] = parts[i];
    for (int i = 0; i < n_parts; i++) {
        p->part_packed[i] = packable(p, i);
        if (!p->part_packed[i]) continue;
        p->layouts[i] = packed_layout_of(parts[i]->type, p->n_in);
        p->part_offset[i] = p->packed_bytes;
        p->packed_bytes += (size_t)part_tiles(p, i) * p->layouts[i].tile_bytes;
    }
}

size_t projection_packed_bytes(const projection *p)
{
    return p->packed_bytes;
}

void projection_pack(projection *p, void *memory, int n_threads)
{
    for (int i = 0; i < p->n_parts; i++) {
        if (!p->part_packed[i]) continue;
        uint8_t *tiles = (uint8_t *)memory + p->part_offset[i];
        size_t tile_bytes = p->layouts[i].tile_bytes;
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (int64_t t = 0; t < part_tiles(p, i); t++)
            packed_fill_tile(&p->layouts[i], tensor_row(p->parts[i], t * PACKED_TILE_ROWS),
                             tiles + (size_t)t * tile_bytes);
    }
    p->packed = memory;
}

/* The first part before part i of the same packed type (whose quantised activations it shares),
 * or i itself. */
static int act_owner(const projection *p, int i)
{
    for (int k = 0; k < i; k++)
        if (p->part_packed[k] && p->layouts[k].type == p->layouts[i].type) return k;
    return i;
}

/* How many tiles of tile_bytes from `offset` begin before byte `at`. */
static int64_t tiles_before(size_t at, size_t offset, size_t tile_bytes)
{
    return at <= offset ? 0 : (int64_t)((at - offset + tile_bytes - 1) / tile_bytes);
}

/* This thread's share of the tiles: those that begin in its slice of the packed bytes. Slices of
 * bytes rather than of tiles, so a q6_K part beside q4_K ones does not load one thread more than
 * the other; each thread streams one contiguous run, measured 10-15% faster than handing out
 * tiles one by one. */
static void thread_tiles(const projection *p, char *const *act, size_t act_stride, int64_t m,
                         float *const *y)
{
    int thread = omp_get_thread_num(), n_threads = omp_get_num_threads();
    size_t begin = p->packed_bytes * (size_t)thread / (size_t)n_threads;
    size_t end = p->packed_bytes * (size_t)(thread + 1) / (size_t)n_threads;
    for (int i = 0; i < p->n_parts; i++) {
        if (!p->part_packed[i]) continue;
        size_t tile_bytes = p->layouts[i].tile_bytes, offset = p->part_offset[i];
        int64_t n_tiles = part_tiles(p, i);
        /* tiles t with begin <= offset + t * tile_bytes < end */
        int64_t first = tiles_before(begin, offset, tile_bytes);
        int64_t last = tiles_before(end, offset, tile_bytes);
        if (last > n_tiles) last = n_tiles;
        if (first < last)
            packed_tiles_product(&p->layouts[i], p->packed + offset + (size_t)first * tile_bytes,
                                 last - first, act[i], act_stride, m, y[i] + first * PACKED_TILE_ROWS,
                                 (size_t)tensor_n_rows(p->parts[i]));
    }
}

static r2gen_status packed_forward(const compute *cpu, const projection *p, const float *x,
                                   int64_t m, float *const *y, error *err)
{
    /* every packed type's activation rows have the same size */
    int first = 0;
    while (!p->part_packed[first]) first++;
    size_t act_stride = packed_act_row_bytes(&p->layouts[first]);
    char *buffer = malloc(act_stride * (size_t)m * (size_t)p->n_parts);
    if (!buffer) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "projection: activation buffer");
    char *act[PROJECTION_MAX_PARTS] = {0};
    for (int i = 0; i < p->n_parts; i++)
        if (p->part_packed[i]) act[i] = buffer + act_stride * (size_t)m * (size_t)act_owner(p, i);
#pragma omp parallel num_threads(cpu->n_threads)
    {
        for (int i = 0; i < p->n_parts; i++) {
            if (!p->part_packed[i] || act_owner(p, i) != i) continue;
#pragma omp for schedule(static)
            for (int64_t r = 0; r < m; r++)
                packed_quantize_act(&p->layouts[i], x + r * p->n_in, act[i] + (size_t)r * act_stride);
        }
        thread_tiles(p, act, act_stride, m, y);
    }
    free(buffer);
    return R2GEN_OK;
}

r2gen_status projection_forward(const compute *cpu, const projection *p, const float *x, int64_t m,
                                float *const *y, error *err)
{
    if (m == 0) return R2GEN_OK;
    r2gen_status status = p->packed ? packed_forward(cpu, p, x, m, y, err) : R2GEN_OK;
    for (int i = 0; status == R2GEN_OK && i < p->n_parts; i++)
        if (!p->packed || !p->part_packed[i]) status = matmul(cpu, y[i], x, m, p->parts[i], NULL, err);
    return status;
}
