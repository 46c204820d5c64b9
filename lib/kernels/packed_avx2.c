/* The packed-layout kernels (see packed.h) on AVX2 + FMA + F16C CPUs without AVX-512 VNNI:
 * compiled with those flags and reached only through packed_supported().
 *
 * A 256-bit register holds half of a 64-byte slice: four quants of each of 8 rows. Without dpbusd
 * the products go through maddubs (u8 * s8, adjacent pairs summed into int16, saturating):
 *   q4_0, q4_K  the block's eight registers are summed in int16 (|sum| <= 8 * 2 * 15 * 127 =
 *         30480) and one madd with ones widens each row's pairs to its int32 block sum;
 *   q8_0  the quants are read as signed (u ^ 0x80) and multiplied as |w| * (a * sign(w)), whose
 *         pair sums (<= 2 * 128 * 127) fit int16, each register's widened before the next;
 *   q6_K  registers are summed in int16 two at a time (<= 2 * 2 * 63 * 127 = 32004) and widened,
 *         into one int32 sum per half block (the halves have their own scales).
 * The 16 ymm registers hold one half-tile of 8 rows and up to 4 activation rows, so a tile is done
 * in two halves (the second reads the tile from L2). */
#include <immintrin.h>
#include <string.h>

#include "packed_kernels.h"
#include "quant.h"
#include "quant_simd.h"

#define ROWS_PER_PASS 4

/* Bytes ahead that the weight stream is prefetched into L2: measured with these kernels on an
 * AVX-512 CPU held to AVX2 (1 GiB of tiles, distances alternated in one process), 64 KiB beat 8-16
 * KiB by 3-17% for every type with 1 and 3 rows, and tied with 128 KiB; half the AVX-512 kernel's
 * distance, as AVX2-only CPUs often have 256 KiB of L2. */
#define PREFETCH_BYTES (64 * 1024)

/* The largest |x| of n values (a multiple of 8). */
static float abs_max(const float *x, int64_t n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 amax = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8)
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    return _mm_cvtss_f32(m4);
}

/* The sum of the 8 int32 lanes of two registers. */
static int32_t lane_sum(__m256i a, __m256i b)
{
    __m256i sum = _mm256_add_epi32(a, b);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s4);
}

/* Per group of packed_act_group() values: d = max|x| / 127; per block of 32, qs = x / d rounded
 * to nearest even (the same rule as the AVX-512 kernel), and per half block offset_sum = -8
 * sum(qs) for q4_0's unsigned nibbles, -32 sum(qs) for q6_K's, sum(qs) for q4_K's mins (packed.h);
 * q8_0 needs none here. */
void packed_quantize_act_avx2(const packed_layout *layout, const float *x, void *act)
{
    block_q8_offset *blocks = act;
    const int offset = layout->type == TENSOR_Q4_0 ? 8
                       : layout->type == TENSOR_Q6_K ? 32
                       : layout->type == TENSOR_Q4_K ? -1 : 0;
    const int64_t group = packed_act_group(layout) / QK8_0;
    for (int64_t g = 0; g < layout->n_in / QK8_0; g += group) {
        float d = abs_max(x + g * QK8_0, group * QK8_0) / 127.0f;
        __m256 inv = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
        for (int64_t b = g; b < g + group; b++) {
            __m256i q[4];
            for (int k = 0; k < 4; k++)
                q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + b * QK8_0 + 8 * k), inv));
            /* int32 -> int8 in value order: the packs work within 128-bit lanes, the permute
             * undoes it */
            __m256i bytes =
                _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)blocks[b].qs, bytes);
            blocks[b].d = d;
            for (int h = 0; h < 2; h++)
                blocks[b].offset_sum[h] = -offset * lane_sum(q[2 * h], q[2 * h + 1]);
        }
    }
}

static inline __m256i broadcast_four(const int8_t *qs)
{
    int32_t word;
    memcpy(&word, qs, sizeof word);
    return _mm256_set1_epi32(word);
}

/* 4-bit block b of rows 8 * half .. + 7: sums[r] = the int32 block sum for activation row r,
 * with q4_0's offset term (not q4_K's: its kernel scales the activations' sum by the mins). */
static inline __attribute__((always_inline)) void
nibble_block_sums(const uint8_t *quants, int64_t b, int half, const char *act, size_t act_stride,
                  int ROWS, int with_offset, __m256i *sums)
{
    const __m256i nibble = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256i wq[8]; /* register j pairs with activation quants 4j..4j+3 */
    for (int j = 0; j < 4; j++) {
        __m256i both = _mm256_load_si256((const __m256i *)(quants + 256 * b + 64 * j + 32 * half));
        wq[j] = _mm256_and_si256(both, nibble);
        wq[j + 4] = _mm256_and_si256(_mm256_srli_epi16(both, 4), nibble);
    }
    for (int r = 0; r < ROWS; r++) {
        const block_q8_offset *a = (const block_q8_offset *)(act + r * act_stride) + b;
        __m256i pairs = _mm256_maddubs_epi16(wq[0], broadcast_four(a->qs));
        for (int j = 1; j < 8; j++)
            pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(wq[j], broadcast_four(a->qs + 4 * j)));
        sums[r] = _mm256_madd_epi16(pairs, ones);
        if (with_offset)
            sums[r] = _mm256_add_epi32(sums[r], _mm256_set1_epi32(a->offset_sum[0] + a->offset_sum[1]));
    }
}

/* The same for q8_0, register by register (each multiplied into every row before the next). */
static inline __attribute__((always_inline)) void
q8_0_block_sums(const uint8_t *quants, int64_t b, int half, const char *act, size_t act_stride,
                int ROWS, __m256i *sums)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    for (int r = 0; r < ROWS; r++) sums[r] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
        __m256i w = _mm256_xor_si256(
            _mm256_load_si256((const __m256i *)(quants + 512 * b + 64 * j + 32 * half)), flip);
        __m256i w_abs = _mm256_abs_epi8(w);
        for (int r = 0; r < ROWS; r++) {
            const block_q8_offset *a = (const block_q8_offset *)(act + r * act_stride) + b;
            __m256i a_signed = _mm256_sign_epi8(broadcast_four(a->qs + 4 * j), w);
            sums[r] = _mm256_add_epi32(sums[r],
                                       _mm256_madd_epi16(_mm256_maddubs_epi16(w_abs, a_signed), ones));
        }
    }
}

/* The same for q6_K: the 6-bit quants put together from the nibbles and the top-bit slices, and
 * a sum per half block (lo: values 0..15, hi: 16..31), each with its offset term. */
static inline __attribute__((always_inline)) void
q6_K_block_sums(const uint8_t *quants, int64_t b, int half, const char *act, size_t act_stride,
                int ROWS, __m256i *lo, __m256i *hi)
{
    const __m256i nibble = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30),
                  ones = _mm256_set1_epi16(1);
    const uint8_t *block = quants + 384 * b + 32 * half;
    __m256i wq[8];
    for (int j = 0; j < 4; j++) {
        __m256i both = _mm256_load_si256((const __m256i *)(block + 64 * j));
        wq[j] = _mm256_and_si256(both, nibble);
        wq[j + 4] = _mm256_and_si256(_mm256_srli_epi16(both, 4), nibble);
    }
    for (int h = 0; h < 2; h++) { /* bits 2j..2j+1 of slice h to bits 4-5 of register 4h + j */
        __m256i high = _mm256_load_si256((const __m256i *)(block + 256 + 64 * h));
        __m256i at[4] = {_mm256_slli_epi16(high, 4), _mm256_slli_epi16(high, 2), high,
                         _mm256_srli_epi16(high, 2)};
        for (int j = 0; j < 4; j++)
            wq[4 * h + j] = _mm256_or_si256(wq[4 * h + j], _mm256_and_si256(at[j], top));
    }
    for (int r = 0; r < ROWS; r++) {
        const block_q8_offset *a = (const block_q8_offset *)(act + r * act_stride) + b;
        __m256i *out[2] = {&lo[r], &hi[r]};
        for (int h = 0; h < 2; h++) {
            __m256i sum = _mm256_set1_epi32(a->offset_sum[h]);
            for (int k = 4 * h; k < 4 * h + 4; k += 2) {
                __m256i pairs = _mm256_add_epi16(
                    _mm256_maddubs_epi16(wq[k], broadcast_four(a->qs + 4 * k)),
                    _mm256_maddubs_epi16(wq[k + 1], broadcast_four(a->qs + 4 * k + 4)));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, ones));
            }
            *out[h] = sum;
        }
    }
}

/* q4_K block b's scales s = d * sc and mins dmin * m for rows 8 * half .. + 7. */
static inline __attribute__((always_inline)) void
q4_K_half_scales(const uint8_t *block_scales, const uint16_t *super_scales, int64_t b, int half,
                 __m256 *s, __m256 *mins)
{
    const uint16_t *super = super_scales + 32 * (b / 8) + 8 * half;
    __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)super));
    __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(super + 16)));
    const uint8_t *bytes = block_scales + 32 * b + 8 * half;
    __m256i sc = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)bytes));
    __m256i m = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(bytes + 16)));
    *s = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc));
    *mins = _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(m));
}

/* q6_K block b's scales d * sc of values 0..15 (lo) and 16..31 (hi), rows 8 * half .. + 7. */
static inline __attribute__((always_inline)) void
q6_K_half_scales(const uint8_t *block_scales, const uint16_t *super_scales, int64_t b, int half,
                 __m256 *lo, __m256 *hi)
{
    const uint16_t *super = super_scales + 16 * (b / 8) + 8 * half;
    __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)super));
    const uint8_t *bytes = block_scales + 32 * b + 8 * half;
    __m256i sc_lo = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)bytes));
    __m256i sc_hi = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(bytes + 16)));
    *lo = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc_lo));
    *hi = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc_hi));
}

/* ROWS activation rows against half of one tile (Q4: 4-bit or 6-bit quants, q4_0, q4_K or q6_K,
 * else q8_0; Q4 and ROWS compile-time). */
static inline __attribute__((always_inline)) void
half_tile_rows(const packed_layout *layout, const uint8_t *tile, int half, const char *act,
               size_t act_stride, int Q4, int ROWS, float *y, size_t y_stride)
{
    const int k4 = layout->type == TENSOR_Q4_K, k6 = Q4 && layout->type == TENSOR_Q6_K;
    const int64_t n_blocks = layout->n_in / QK8_0;
    const size_t block_bytes = !Q4 ? 512 : k6 ? 384 : 256;
    const uint8_t *block_scales = tile + (size_t)n_blocks * block_bytes;
    const uint16_t *super_scales = (const uint16_t *)(block_scales + (size_t)n_blocks * 32);
    __m256 acc[ROWS_PER_PASS];
    for (int r = 0; r < ROWS; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n_blocks; b++) {
        if (half == 0) {
            /* (this reaches past the tile, into the next ones or past the weights: prefetches
             * never fault) */
            const char *ahead = (const char *)tile + (size_t)b * block_bytes + PREFETCH_BYTES;
            for (size_t line = 0; line < block_bytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T1);
        }
        /* sums: the block's (q6_K: its values 0..15), sums_hi: q6_K's values 16..31 */
        __m256i sums[ROWS_PER_PASS], sums_hi[ROWS_PER_PASS];
        if (k6)
            q6_K_block_sums(tile, b, half, act, act_stride, ROWS, sums, sums_hi);
        else if (Q4)
            nibble_block_sums(tile, b, half, act, act_stride, ROWS, !k4, sums);
        else
            q8_0_block_sums(tile, b, half, act, act_stride, ROWS, sums);
        __m256 d_w, d_hi = _mm256_setzero_ps(), mins = _mm256_setzero_ps();
        if (k4)
            q4_K_half_scales(block_scales, super_scales, b, half, &d_w, &mins);
        else if (k6)
            q6_K_half_scales(block_scales, super_scales, b, half, &d_w, &d_hi);
        else
            d_w = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(block_scales + 32 * b + 16 * half)));
        for (int r = 0; r < ROWS; r++) {
            const block_q8_offset *a = (const block_q8_offset *)(act + r * act_stride) + b;
            __m256 block_sum = _mm256_cvtepi32_ps(sums[r]), d_a = _mm256_set1_ps(a->d);
            if (k6) { /* d_a * (s_lo * sum_lo + s_hi * sum_hi) */
                __m256 both = _mm256_fmadd_ps(block_sum, d_w,
                                              _mm256_mul_ps(_mm256_cvtepi32_ps(sums_hi[r]), d_hi));
                acc[r] = _mm256_fmadd_ps(both, d_a, acc[r]);
            } else if (k4) { /* d_a * (s * sum(u a) - min * sum(a)) */
                float sum_a = (float)(a->offset_sum[0] + a->offset_sum[1]);
                acc[r] = _mm256_fmadd_ps(
                    _mm256_fmsub_ps(block_sum, d_w, _mm256_mul_ps(mins, _mm256_set1_ps(sum_a))), d_a, acc[r]);
            } else {
                acc[r] = _mm256_fmadd_ps(block_sum, _mm256_mul_ps(d_w, d_a), acc[r]);
            }
        }
    }
    for (int r = 0; r < ROWS; r++) _mm256_storeu_ps(y + r * y_stride + 8 * half, acc[r]);
}

#define HALF_TILE_Q8_ROWS(Q8, ROWS)                                                                \
    half_tile_rows(layout, tile, half, act, act_stride, !(Q8), ROWS, y, y_stride)

static void tile_pass(const packed_layout *layout, const uint8_t *tile, const char *act,
                      size_t act_stride, int n_rows, float *y, size_t y_stride)
{
    int q8 = layout->type == TENSOR_Q8_0;
    for (int half = 0; half < 2; half++) WITH_FLAG_AND_ROWS(HALF_TILE_Q8_ROWS, q8, n_rows)
}

void packed_tiles_product_avx2(const packed_layout *layout, const void *tiles, int64_t n_tiles,
                               const void *act, size_t act_stride, int64_t n_rows, float *y,
                               size_t y_stride)
{
    packed_passes(layout, tiles, n_tiles, act, act_stride, n_rows, y, y_stride, ROWS_PER_PASS,
                  tile_pass);
}
