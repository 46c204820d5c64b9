#include "projection.h"

#include <stdlib.h>

#include "matmul.h"

/* Whether part i can go into the packed tiles: a type the packed kernels run on this CPU, the
 * projection's n_in, whole tiles of rows, and the type of the projection's first such part. */
static int packable(const projection *p, int i, tensor_type packed_type)
{
    const tensor *t = p->parts[i];
    return t->type == packed_type && t->ne[0] == p->n_in &&
           tensor_n_rows(t) % PACKED_TILE_ROWS == 0 && packed_supported(t->type, p->n_in);
}

void projection_init(projection *p, int n_parts, const tensor *const *parts)
{
    *p = (projection){.n_parts = n_parts, .n_in = parts[0]->ne[0]};
    for (int i = 0; i < n_parts; i++) p->parts[i] = parts[i];
    int first = 0;
    while (first < n_parts && !packable(p, first, parts[first]->type)) first++;
    if (first == n_parts) return;
    p->layout = packed_layout_of(parts[first]->type, p->n_in);
    for (int i = first; i < n_parts; i++) {
        p->part_packed[i] = packable(p, i, parts[first]->type);
        if (p->part_packed[i]) p->n_tiles += tensor_n_rows(parts[i]) / PACKED_TILE_ROWS;
    }
}

size_t projection_packed_bytes(const projection *p)
{
    return (size_t)p->n_tiles * p->layout.tile_bytes;
}

void projection_pack(projection *p, void *memory, int n_threads)
{
    uint8_t *tiles = memory;
    for (int i = 0; i < p->n_parts; i++) {
        if (!p->part_packed[i]) continue;
        int64_t n_tiles = tensor_n_rows(p->parts[i]) / PACKED_TILE_ROWS;
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (int64_t t = 0; t < n_tiles; t++)
            packed_fill_tile(&p->layout, tensor_row(p->parts[i], t * PACKED_TILE_ROWS),
                             tiles + (size_t)t * p->layout.tile_bytes);
        tiles += (size_t)n_tiles * p->layout.tile_bytes;
    }
    p->packed = memory;
}

/* The output of tile t: its part's buffer, at the tile's first row of that part. */
static float *tile_output(const projection *p, int64_t t, float *const *y, size_t *y_stride)
{
    int64_t row = t * PACKED_TILE_ROWS;
    int i = 0;
    while (!p->part_packed[i] || row >= tensor_n_rows(p->parts[i])) {
        if (p->part_packed[i]) row -= tensor_n_rows(p->parts[i]);
        i++;
    }
    *y_stride = (size_t)tensor_n_rows(p->parts[i]);
    return y[i] + row;
}

static r2gen_status packed_forward(const compute *cpu, const projection *p, const float *x,
                                   int64_t m, float *const *y, error *err)
{
    size_t act_stride = packed_act_row_bytes(&p->layout);
    char *act = malloc(act_stride * (size_t)m);
    if (!act) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "projection: activation buffer");
#pragma omp parallel num_threads(cpu->n_threads)
    {
#pragma omp for schedule(static)
        for (int64_t r = 0; r < m; r++)
            packed_quantize_act(&p->layout, x + r * p->n_in, act + (size_t)r * act_stride);
        /* Each thread streams one contiguous run of tiles: measured 10-15% faster than handing
         * out tiles one by one, whose interleaved streams the prefetchers follow less well. */
#pragma omp for schedule(static)
        for (int64_t t = 0; t < p->n_tiles; t++) {
            size_t y_stride;
            float *out = tile_output(p, t, y, &y_stride);
            packed_tile_product(&p->layout, p->packed + (size_t)t * p->layout.tile_bytes, act,
                                act_stride, m, out, y_stride);
        }
    }
    free(act);
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
