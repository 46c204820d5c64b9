/* A projection of the LLaMA decoder: 1 .. PROJECTION_MAX_PARTS weight tensors that multiply the
 * same activations (q, k and v; gate and up; or one alone), each with its own output buffer.
 *
 * The parts the packed kernels run on this CPU (lib/kernels/packed.h: a packed type, whole tiles
 * of rows) are packed at load, each in its own type (Q4_K_M files put a q6_K v beside q4_K q and
 * k), and each call is one product for them: the activations are quantised once per type and one
 * parallel loop streams all their tiles. The other parts go through matmul() as they lie in the
 * file. */
#ifndef R2GEN_OPS_PROJECTION_H
#define R2GEN_OPS_PROJECTION_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor.h"
#include "compute.h"
#include "kernels/packed.h"

#define PROJECTION_MAX_PARTS 3

typedef struct projection {
    int n_parts;
    const tensor *parts[PROJECTION_MAX_PARTS]; /* the file's weights; they outlive the projection */
    int64_t n_in;
    int part_packed[PROJECTION_MAX_PARTS];     /* which parts are in the tiles */
    packed_layout layouts[PROJECTION_MAX_PARTS]; /* of the packed parts */
    size_t part_offset[PROJECTION_MAX_PARTS];    /* bytes before a packed part's first tile */
    size_t packed_bytes;                         /* of all the packed parts' tiles */
    const uint8_t *packed; /* the tiles, packed part after packed part; NULL when unpacked */
} projection;

/* Describes a projection over parts of equal n_in (unpacked until projection_pack). */
void projection_init(projection *p, int n_parts, const tensor *const *parts);

/* Bytes the packed tiles need: 0 when the projection cannot be packed on this CPU. */
size_t projection_packed_bytes(const projection *p);

/* Packs the parts into `memory` (projection_packed_bytes, 64-byte aligned, owned by the caller and
 * kept as long as the projection), on n_threads threads. */
void projection_pack(projection *p, void *memory, int n_threads);

/* y[i][m][n_out of part i] = x[m][n_in] · part_iᵀ for every part i. */
r2gen_status projection_forward(const compute *cpu, const projection *p, const float *x, int64_t m,
                                float *const *y, error *err);

#endif
