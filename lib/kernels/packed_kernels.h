/* What packed.c hands to the instruction-set files of the packed layout, and what they give back:
 * the AVX-512 VNNI and AVX2 versions of packed_quantize_act and packed_tile_product. */
#ifndef R2GEN_KERNELS_PACKED_KERNELS_H
#define R2GEN_KERNELS_PACKED_KERNELS_H

#include "packed.h"

/* One pass of n_rows activation rows (at most the kernel's pass size) against one tile. */
typedef void packed_pass_fn(const packed_layout *layout, const uint8_t *tile, const char *act,
                            size_t act_stride, int n_rows, float *y, size_t y_stride);

/* Runs n_rows activation rows through `pass` in passes of near-equal size of at most max_rows (81
 * rows by 8: 11 passes of 7 or 8), so no pass pays a whole block unpacking for a row or two. */
void packed_passes(const packed_layout *layout, const void *tile, const void *act, size_t act_stride,
                   int64_t n_rows, float *y, size_t y_stride, int max_rows, packed_pass_fn *pass);

void packed_quantize_act_avx512(const packed_layout *layout, const float *x, void *act);
void packed_tile_product_avx512(const packed_layout *layout, const void *tile, const void *act,
                                size_t act_stride, int64_t n_rows, float *y, size_t y_stride);

void packed_quantize_act_avx2(const packed_layout *layout, const float *x, void *act);
void packed_tile_product_avx2(const packed_layout *layout, const void *tile, const void *act,
                              size_t act_stride, int64_t n_rows, float *y, size_t y_stride);

#endif
