/* What packed.c hands to the instruction-set files of the packed layout, and what they give back:
 * the AVX-512 VNNI and AVX2 versions of packed_quantize_act and packed_tiles_product. */
#ifndef R2GEN_KERNELS_PACKED_KERNELS_H
#define R2GEN_KERNELS_PACKED_KERNELS_H

#include "packed.h"

/* Tiles that take every pass of a many-row product before the next ones (see packed_passes):
 * measured on Llama-2-7B prefills of 81 positions, 2 to 16 tiles were 2% (q4_0) to 6% (q4_K)
 * faster than 1, 4 the best. */
#define PACKED_TILE_GROUP 4

/* One pass of n_rows activation rows (at most the kernel's pass size) against one tile. */
typedef void packed_pass_fn(const packed_layout *layout, const uint8_t *tile, const char *act,
                            size_t act_stride, int n_rows, float *y, size_t y_stride);

/* Runs n_rows activation rows against n_tiles tiles through `pass`, in passes of near-equal size
 * of at most max_rows (81 rows by 8: 11 passes of 7 or 8), so no pass pays a whole block
 * unpacking for a row or two. With several passes (a prefill), PACKED_TILE_GROUP tiles at a time
 * take every pass before the next ones: the group stays in L2 while a pass's activation rows are
 * read once for all its tiles. */
void packed_passes(const packed_layout *layout, const void *tiles, int64_t n_tiles, const void *act,
                   size_t act_stride, int64_t n_rows, float *y, size_t y_stride, int max_rows,
                   packed_pass_fn *pass);

void packed_quantize_act_avx512(const packed_layout *layout, const float *x, void *act);
void packed_tiles_product_avx512(const packed_layout *layout, const void *tiles, int64_t n_tiles,
                                 const void *act, size_t act_stride, int64_t n_rows, float *y,
                                 size_t y_stride);

void packed_quantize_act_avx2(const packed_layout *layout, const float *x, void *act);
void packed_tiles_product_avx2(const packed_layout *layout, const void *tiles, int64_t n_tiles,
                               const void *act, size_t act_stride, int64_t n_rows, float *y,
                               size_t y_stride);

#endif
