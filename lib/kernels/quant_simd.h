/* Kernels of the SIMD files that other sets reuse: the AVX-512 set runs the AVX2 versions where a
 * wider one would not pay (every AVX-512 CPU this set is selected on also has AVX2). */
#ifndef R2GEN_KERNELS_QUANT_SIMD_H
#define R2GEN_KERNELS_QUANT_SIMD_H

#include <string.h>

#include "quant_ref.h"

void dot_f16_avx2(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows,
                  float *out);
void dot_bf16_avx2(int64_t n, const void *w, const void *act, size_t act_stride, int n_rows,
                   float *out);
void f16_to_float_avx2(const void *w, float *y, int64_t n);
void q4_K_to_float_avx2(const void *w, float *y, int64_t n);
void q6_K_to_float_avx2(const void *w, float *y, int64_t n);

/* The 8 scales (bytes 0-7) and 8 mins (bytes 8-15) of a q4_K block, unpacked four at a time with
 * 32-bit masks (the same packing q4_K_scale_min reads one at a time). */
static inline void q4_K_unpack_scales(const uint8_t packed[12], uint8_t out[16])
{
    uint32_t u[3], r[4];
    memcpy(u, packed, sizeof u);
    r[0] = u[0] & 0x3f3f3f3fu;                                      /* scales 0-3 */
    r[1] = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u);      /* scales 4-7 */
    r[2] = u[1] & 0x3f3f3f3fu;                                      /* mins 0-3 */
    r[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u); /* mins 4-7 */
    memcpy(out, r, sizeof r);
}

/* The SIMD dot kernels are written as always_inline bodies taking the row count; this calls one
 * with n_rows as a compile-time constant, so its per-row accumulators live in registers instead of
 * an array in memory. `variant` selects between sibling types sharing a body (f16/bf16,
 * q8_0/q4_0). */
#define CALL_WITH_ROW_COUNT(body, n, w, act, act_stride, n_rows, out, variant)                     \
    switch (n_rows) {                                                                              \
    case 1: body(n, w, act, act_stride, 1, out, variant); break;                                   \
    case 2: body(n, w, act, act_stride, 2, out, variant); break;                                   \
    case 3: body(n, w, act, act_stride, 3, out, variant); break;                                   \
    default: body(n, w, act, act_stride, KERNEL_MAX_ROWS, out, variant); break;                    \
    }

/* Runs BODY(FLAG, ROWS) with both as compile-time constants: flag 0 or 1, n_rows 1..4 (the
 * attention and packed AVX2 kernels: f16 or f32 entries, q8_0 or 4-bit quants). */
#define WITH_FLAG_AND_ROWS(BODY, flag, n_rows)                                                     \
    switch ((n_rows) + ((flag) ? 4 : 0)) {                                                         \
    case 1: BODY(0, 1); break;                                                                     \
    case 2: BODY(0, 2); break;                                                                     \
    case 3: BODY(0, 3); break;                                                                     \
    case 4: BODY(0, 4); break;                                                                     \
    case 5: BODY(1, 1); break;                                                                     \
    case 6: BODY(1, 2); break;                                                                     \
    case 7: BODY(1, 3); break;                                                                     \
    default: BODY(1, 4); break;                                                                    \
    }

#endif
