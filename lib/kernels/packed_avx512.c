/* The packed-layout kernels (see packed.h), AVX-512 F/BW/VL/VNNI: compiled with those flags and
 * reached only through packed_supported(), which checks the CPU. */
#include <immintrin.h>

#include "packed_kernels.h"
#include "quant.h"

/* Bytes ahead that the weight stream is prefetched into L2: 128 KiB of 4- and 6-bit quants, 6 KiB
 * (12 blocks) of q8_0. Measured on 1 GiB of tiles, distances alternated in one process: without
 * prefetching 3 rows run 25-35% slower; into L2 (T1) beats into L1 (T0) and T2; every line of a
 * block must be prefetched (every other line, or one per block: 3 rows at half the speed, as the
 * hardware prefetchers do not follow this stream). q4_0, q4_K, q6_K gain 10-25% (1 and 3 rows)
 * from 64-256 KiB against 8 KiB, most when the machine's bandwidth is high. q8_0, with less work
 * per byte, is best near 6 KiB (1 row 3-12% faster than 16 KiB; 64-128 KiB no better). */
#define PREFETCH_BYTES_Q4 (128 * 1024)
#define PREFETCH_BYTES_Q8 (12 * 512)

/* Offset o of the packed quants: value = d * (u - o); q4_K's -1 makes offset_sum the plain sum of
 * the activation quants, which its kernel multiplies by each row's min. */
static int weight_offset(tensor_type type)
{
    return type == TENSOR_Q4_0 ? 8 : type == TENSOR_Q8_0 ? 128 : type == TENSOR_Q6_K ? 32 : -1;
}

/* Per group of packed_act_group() values: d = max|x| / 127; per block of 32, qs = x / d rounded
 * to nearest even (as quantize_act_q8_0 and its siblings do) and the offset terms for these
 * weights. */
void packed_quantize_act_avx512(const packed_layout *layout, const float *x, void *act)
{
    block_q8_offset *blocks = act;
    const int offset = weight_offset(layout->type);
    const int64_t group = packed_act_group(layout) / QK8_0;
    for (int64_t g = 0; g < layout->n_in / QK8_0; g += group) {
        __m512 amax = _mm512_setzero_ps();
        for (int64_t i = 0; i < group * QK8_0; i += 16)
            amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(x + g * QK8_0 + i)));
        float d = _mm512_reduce_max_ps(amax) / 127.0f;
        __m512 inv = _mm512_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
        for (int64_t b = g; b < g + group; b++) {
            __m512i q_lo = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + b * QK8_0), inv));
            __m512i q_hi =
                _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + b * QK8_0 + 16), inv));
            _mm_storeu_si128((__m128i *)blocks[b].qs, _mm512_cvtsepi32_epi8(q_lo));
            _mm_storeu_si128((__m128i *)(blocks[b].qs + 16), _mm512_cvtsepi32_epi8(q_hi));
            blocks[b].d = d;
            blocks[b].offset_sum[0] = -offset * _mm512_reduce_add_epi32(q_lo);
            blocks[b].offset_sum[1] = -offset * _mm512_reduce_add_epi32(q_hi);
        }
    }
}

/* The 8 weight registers of block b (bits: 4, 6 or 8 per quant): register j pairs with
 * activation quants 4j..4j+3. */
static inline __attribute__((always_inline)) void
block_weights(const uint8_t *quants, int64_t b, int bits, __m512i wq[8])
{
    if (bits == 8) {
        for (int j = 0; j < 8; j++) wq[j] = _mm512_load_si512(quants + 512 * b + 64 * j);
        return;
    }
    const __m512i nibble = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    const uint8_t *block = quants + (bits == 6 ? 384 : 256) * b;
    for (int j = 0; j < 4; j++) {
        __m512i both = _mm512_load_si512(block + 64 * j);
        wq[j] = _mm512_and_si512(both, nibble);
        wq[j + 4] = _mm512_and_si512(_mm512_srli_epi16(both, 4), nibble);
    }
    if (bits == 4) return;
    for (int h = 0; h < 2; h++) { /* bits 2j..2j+1 of slice h to bits 4-5 of register 4h + j */
        __m512i high = _mm512_load_si512(block + 256 + 64 * h);
        __m512i at[4] = {_mm512_slli_epi16(high, 4), _mm512_slli_epi16(high, 2), high,
                         _mm512_srli_epi16(high, 2)};
        /* (at & top) | wq: shifts within 16 bits bring other bits along, the mask drops them */
        for (int j = 0; j < 4; j++)
            wq[4 * h + j] = _mm512_ternarylogic_epi32(at[j], top, wq[4 * h + j], 0xEA);
    }
}

/* sums += w times the four activation quants at `four`, broadcast to every lane. Written out
 * because GCC 12 loads the broadcast into a register first instead of folding it into the
 * instruction's memory operand (clang folds it): one instruction fewer per 64 multiply-adds,
 * 3-6% faster with 2-4 rows on one core. */
static inline __attribute__((always_inline)) __m512i dpbusd_broadcast(__m512i sums, __m512i w,
                                                                      const int8_t *four)
{
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(sums) : "v"(w), "m"(*(const int32_t(*)[1])four));
    return sums;
}

/* q4_K block b's 16 scales s = d * sc and mins dmin * m (d and dmin are the super-block's). */
static inline __attribute__((always_inline)) void
q4_K_block_scales(const uint8_t *block_scales, const uint16_t *super_scales, int64_t b, __m512 *s,
                  __m512 *mins)
{
    const uint16_t *super = super_scales + 32 * (b / 8);
    __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)super));
    __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(super + 16)));
    const __m128i *bytes = (const __m128i *)(block_scales + 32 * b);
    *s = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(bytes))));
    *mins = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(bytes + 1))));
}

/* q6_K block b's 16 scales d * sc of values 0..15 (lo) and 16..31 (hi). */
static inline __attribute__((always_inline)) void
q6_K_block_scales(const uint8_t *block_scales, const uint16_t *super_scales, int64_t b, __m512 *lo,
                  __m512 *hi)
{
    __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(super_scales + 16 * (b / 8))));
    const __m128i *bytes = (const __m128i *)(block_scales + 32 * b);
    *lo = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(bytes))));
    *hi = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(bytes + 1))));
}

/* n_rows activation rows against one tile of `type` (both compile-time constants after
 * inlining, so each pass keeps only its type's registers). */
static inline __attribute__((always_inline)) void
tile_rows(const packed_layout *layout, const uint8_t *tile, const char *act, size_t act_stride,
          int n_rows, tensor_type type, float *y, size_t y_stride)
{
    const int q8 = type == TENSOR_Q8_0, k4 = type == TENSOR_Q4_K, k6 = type == TENSOR_Q6_K;
    const int64_t n_blocks = layout->n_in / QK8_0;
    const size_t block_bytes = q8 ? 512 : k6 ? 384 : 256;
    const size_t prefetch_bytes = q8 ? PREFETCH_BYTES_Q8 : PREFETCH_BYTES_Q4;
    const uint8_t *block_scales = tile + (size_t)n_blocks * block_bytes;
    const uint16_t *super_scales = (const uint16_t *)(block_scales + (size_t)n_blocks * 32);
    /* acc: the outputs; super: the K-quants' sums of one super-block, before its activation scale */
    __m512 acc[PACKED_ROWS_PER_PASS], super[PACKED_ROWS_PER_PASS];
    for (int r = 0; r < n_rows; r++) acc[r] = super[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n_blocks; b++) {
        __m512i wq[8];
        /* (this reaches past the tile, into the next ones or past the weights: prefetches never
         * fault) */
        const char *ahead = (const char *)tile + (size_t)b * block_bytes + prefetch_bytes;
        for (size_t line = 0; line < block_bytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T1);
        block_weights(tile, b, q8 ? 8 : k6 ? 6 : 4, wq);
        /* d_w scales the block (q6_K: its values 0..15), d_hi q6_K's values 16..31 */
        __m512 d_w, d_hi = _mm512_setzero_ps(), mins = _mm512_setzero_ps();
        if (k4)
            q4_K_block_scales(block_scales, super_scales, b, &d_w, &mins);
        else if (k6)
            q6_K_block_scales(block_scales, super_scales, b, &d_w, &d_hi);
        else
            d_w = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(block_scales + 32 * b)));
        for (int r = 0; r < n_rows; r++) {
            const block_q8_offset *a = (const block_q8_offset *)(act + r * act_stride) + b;
            /* two chains of four, one per half block: the block's sum waits on half the dpbusd
             * latency, and q6_K scales the halves apart */
            __m512i s0 = k4 ? _mm512_setzero_si512() : _mm512_set1_epi32(a->offset_sum[0]);
            __m512i s1 = k4 ? _mm512_setzero_si512() : _mm512_set1_epi32(a->offset_sum[1]);
            for (int j = 0; j < 4; j++) {
                s0 = dpbusd_broadcast(s0, wq[j], a->qs + 4 * j);
                s1 = dpbusd_broadcast(s1, wq[j + 4], a->qs + 16 + 4 * j);
            }
            if (k6) { /* s_lo * sum_lo + s_hi * sum_hi */
                super[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), d_w, super[r]);
                super[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), d_hi, super[r]);
            } else if (k4) { /* s * sum(u a) - min * sum(a) */
                float sum_a = (float)(a->offset_sum[0] + a->offset_sum[1]);
                __m512 sums = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
                super[r] = _mm512_fmadd_ps(sums, d_w, super[r]);
                super[r] = _mm512_fnmadd_ps(mins, _mm512_set1_ps(sum_a), super[r]);
            } else {
                __m512 sums = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
                acc[r] = _mm512_fmadd_ps(sums, _mm512_mul_ps(d_w, _mm512_set1_ps(a->d)), acc[r]);
            }
        }
        /* after a super-block's last block, its activation scale, once (every block of the
         * super-block carries the same d) */
        if ((k4 || k6) && b % (QK_K / QK8_0) == QK_K / QK8_0 - 1)
            for (int r = 0; r < n_rows; r++) {
                const block_q8_offset *a = (const block_q8_offset *)(act + r * act_stride) + b;
                acc[r] = _mm512_fmadd_ps(super[r], _mm512_set1_ps(a->d), acc[r]);
                super[r] = _mm512_setzero_ps();
            }
    }
    for (int r = 0; r < n_rows; r++) _mm512_storeu_ps(y + r * y_stride, acc[r]);
}

#define TILE_ROWS_CASE(type, k)                                                                    \
    case k: tile_rows(layout, tile, act, act_stride, k, type, y, y_stride); break

/* One pass for each type, every row count compiled apart. */
#define DEFINE_TILE_PASS(name, type)                                                               \
    static void name(const packed_layout *layout, const uint8_t *tile, const char *act,            \
                     size_t act_stride, int n_rows, float *y, size_t y_stride)                     \
    {                                                                                              \
        switch (n_rows) {                                                                          \
            TILE_ROWS_CASE(type, 1);                                                               \
            TILE_ROWS_CASE(type, 2);                                                               \
            TILE_ROWS_CASE(type, 3);                                                               \
            TILE_ROWS_CASE(type, 4);                                                               \
            TILE_ROWS_CASE(type, 5);                                                               \
            TILE_ROWS_CASE(type, 6);                                                               \
            TILE_ROWS_CASE(type, 7);                                                               \
            default: TILE_ROWS_CASE(type, PACKED_ROWS_PER_PASS);                                   \
        }                                                                                          \
    }
DEFINE_TILE_PASS(tile_pass_q4_0, TENSOR_Q4_0)
DEFINE_TILE_PASS(tile_pass_q8_0, TENSOR_Q8_0)
DEFINE_TILE_PASS(tile_pass_q4_K, TENSOR_Q4_K)
DEFINE_TILE_PASS(tile_pass_q6_K, TENSOR_Q6_K)

void packed_tiles_product_avx512(const packed_layout *layout, const void *tiles, int64_t n_tiles,
                                 const void *act, size_t act_stride, int64_t n_rows, float *y,
                                 size_t y_stride)
{
    packed_pass_fn *pass = layout->type == TENSOR_Q8_0   ? tile_pass_q8_0
                           : layout->type == TENSOR_Q4_K ? tile_pass_q4_K
                           : layout->type == TENSOR_Q6_K ? tile_pass_q6_K
                                                         : tile_pass_q4_0;
    packed_passes(layout, tiles, n_tiles, act, act_stride, n_rows, y, y_stride, PACKED_ROWS_PER_PASS,
                  pass);
}
