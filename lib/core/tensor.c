#include "tensor.h"

#include <string.h>

typedef struct type_info {
    tensor_type type;
    const char *name;
    int64_t block_elems;
    size_t block_bytes;
} type_info;

/* Block sizes as ggml defines them: q8_0/q4_0 hold 32 values and one fp16 scale; the K-quants
 * hold 256 values in a super-block (see lib/kernels/quant.h for the layouts). */
static const type_info type_table[] = {
    {TENSOR_F32, "f32", 1, 4},      {TENSOR_F16, "f16", 1, 2},
    {TENSOR_BF16, "bf16", 1, 2},    {TENSOR_Q8_0, "q8_0", 32, 34},
    {TENSOR_Q4_0, "q4_0", 32, 18},  {TENSOR_Q4_K, "q4_K", 256, 144},
    {TENSOR_Q6_K, "q6_K", 256, 210},
};

static const type_info *find_type(uint32_t type)
{
    for (size_t i = 0; i < sizeof type_table / sizeof type_table[0]; i++)
        if ((uint32_t)type_table[i].type == type) return &type_table[i];
    return NULL;
}

int tensor_type_known(uint32_t type) { return find_type(type) != NULL; }

int64_t tensor_type_block_elems(tensor_type type)
{
    const type_info *info = find_type(type);
    return info ? info->block_elems : 0;
}

size_t tensor_type_block_bytes(tensor_type type)
{
    const type_info *info = find_type(type);
    return info ? info->block_bytes : 0;
}

/* ggml's names of the types the library does not read (ggml.h numbering), for the messages that
 * refuse them: users meet these as the quantisation names of llama.cpp's files. */
static const char *unread_type_name(uint32_t type)
{
    static const char *const names[] = {
        [3] = "q4_1",     [6] = "q5_0",     [7] = "q5_1",     [9] = "q8_1",
        [10] = "q2_K",    [11] = "q3_K",    [13] = "q5_K",    [15] = "q8_K",
        [16] = "iq2_xxs", [17] = "iq2_xs",  [18] = "iq3_xxs", [19] = "iq1_s",
        [20] = "iq4_nl",  [21] = "iq3_s",   [22] = "iq2_s",   [23] = "iq4_xs",
        [24] = "i8",      [25] = "i16",     [26] = "i32",     [27] = "i64",
        [28] = "f64",     [29] = "iq1_m",
    };
    return type < sizeof names / sizeof names[0] && names[type] ? names[type] : "unknown";
}

const char *tensor_type_name(uint32_t type)
{
    const type_info *info = find_type(type);
    return info ? info->name : unread_type_name(type);
}

size_t tensor_row_bytes(tensor_type type, int64_t n)
{
    const type_info *info = find_type(type);
    if (!info || n < 0 || n % info->block_elems != 0) return 0;
    return (size_t)(n / info->block_elems) * info->block_bytes;
}

int64_t tensor_n_elems(const tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < TENSOR_MAX_DIMS; i++) n *= t->ne[i];
    return n;
}

int64_t tensor_n_rows(const tensor *t) { return tensor_n_elems(t) / t->ne[0]; }

const void *tensor_row(const tensor *t, int64_t row)
{
    return (const char *)t->data + (size_t)row * tensor_row_bytes(t->type, t->ne[0]);
}

float fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13); /* inf / nan */
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else { /* subnormal half: normalise */
        int shift = 0;
        while (!(mantissa & 0x400)) {
            mantissa <<= 1;
            shift++;
        }
        mantissa &= 0x3ff;
        bits = sign | ((uint32_t)(113 - shift) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t f32_to_fp16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    uint32_t abs = bits & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* inf or nan */
        return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
    if (abs >= 0x477ff000u) return sign | 0x7c00; /* rounds past the largest half */
    if (abs < 0x38800000u) {                     /* half subnormal or zero */
        if (abs < 0x33000000u) return sign;
        uint32_t exponent = abs >> 23;
        uint32_t mantissa = (abs & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - exponent;
        uint32_t half = mantissa >> shift;
        uint32_t rest = mantissa & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t rounded = abs + 0xfff + ((abs >> 13) & 1); /* round to nearest even */
    return sign | (uint16_t)((rounded - 0x38000000u) >> 13);
}

float bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t f32_to_bf16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40); /* quiet nan */
    return (uint16_t)((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}
