/* Half and bfloat16 conversions: exhaustive over all 65536 bit patterns one way, round-to-
 * nearest-even the other way. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/tensor.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void test_fp16_round_trip(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fp16_to_f32((uint16_t)h);
        int is_nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (is_nan ? !isnan(f) : f32_to_fp16(f) != h) bad++;
    }
    CHECK(bad == 0, "%d half values do not round-trip", bad);
    CHECK(fp16_to_f32(0x3c00) == 1.0f && fp16_to_f32(0xc000) == -2.0f, "1 and -2");
    CHECK(fp16_to_f32(0x0001) == ldexpf(1.0f, -24), "smallest subnormal");
}

static void test_fp16_rounding(void)
{
    /* halfway between 1 and the next half (1 + 2^-10): ties go to even (1.0) */
    CHECK(f32_to_fp16(1.0f + ldexpf(1.0f, -11)) == 0x3c00, "tie to even");
    CHECK(f32_to_fp16(1.0f + ldexpf(1.0f, -11) + ldexpf(1.0f, -20)) == 0x3c01, "above tie");
    CHECK(f32_to_fp16(65520.0f) == 0x7c00 && f32_to_fp16(65519.0f) == 0x7bff, "overflow edge");
    CHECK(f32_to_fp16(ldexpf(1.0f, -25)) == 0, "half the smallest subnormal ties to 0");
    CHECK(f32_to_fp16(ldexpf(1.5f, -25)) == 1, "above it rounds up");
    CHECK(f32_to_fp16(-0.0f) == 0x8000, "negative zero");
}

static void test_bf16(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bf16_to_f32((uint16_t)h);
        if (!isnan(f) && f32_to_bf16(f) != h) bad++;
        if (bits_of(f) != h << 16) bad++;
    }
    CHECK(bad == 0, "%d bf16 values do not round-trip", bad);
    CHECK(f32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80, "tie to even");
    CHECK(f32_to_bf16(1.0f + ldexpf(3.0f, -8)) == 0x3f82, "tie to even, upwards");
}

static void test_row_bytes(void)
{
    CHECK(tensor_row_bytes(TENSOR_Q4_0, 64) == 36, "q4_0");
    CHECK(tensor_row_bytes(TENSOR_Q8_0, 33) == 0, "partial block");
    CHECK(tensor_row_bytes(TENSOR_Q6_K, 512) == 420, "q6_K");
    CHECK(!tensor_type_known(3), "q4_1 unknown");
}

int main(void)
{
    test_fp16_round_trip();
    test_fp16_rounding();
    test_bf16();
    test_row_bytes();
    return check_summary();
}
