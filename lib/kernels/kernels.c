/* Runtime choice of a kernel set. The CPU's answer to CPUID is read once per process (in a
 * virtual machine each CPUID instruction traps to the hypervisor, ~10 us, which per attention head
 * would cost more than the head); R2GEN_CPU is read on every call, a short scan. */
#include "quant.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t f16c_once = PTHREAD_ONCE_INIT;
static int f16c_present; /* written once, under f16c_once */

static void read_f16c(void)
{
    unsigned eax, ebx, ecx, edx;
    f16c_present = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
}

/* F16C through CPUID (leaf 1, ECX bit 29): clang 14's __builtin_cpu_supports does not know it. */
static int cpu_has_f16c(void)
{
    pthread_once(&f16c_once, read_f16c);
    return f16c_present;
}

static int cpu_has_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}

static int cpu_has_avx512(void)
{
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vnni");
}

int kernels_cpu_has_bf16(void) { return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16"); }

const kernels *kernels_for_path(kernel_path path)
{
    switch (path) {
    case KERNEL_SCALAR: return &kernels_scalar;
    case KERNEL_AVX2: return cpu_has_avx2() ? &kernels_avx2 : NULL;
    case KERNEL_AVX512: return cpu_has_avx512() ? &kernels_avx512 : NULL;
    }
    return NULL;
}

/* R2GEN_CPU=scalar|avx2|avx512 caps the path (unset or unrecognised: no cap). */
static kernel_path requested_path(void)
{
    const char *request = getenv("R2GEN_CPU");
    if (request && strcmp(request, "scalar") == 0) return KERNEL_SCALAR;
    if (request && strcmp(request, "avx2") == 0) return KERNEL_AVX2;
    return KERNEL_AVX512;
}

const kernels *kernels_select(void)
{
    for (int path = requested_path(); path > KERNEL_SCALAR; path--) {
        const kernels *set = kernels_for_path((kernel_path)path);
        if (set) return set;
    }
    return &kernels_scalar;
}

const type_kernels *kernels_for_type(const kernels *set, tensor_type type)
{
    switch (type) {
    case TENSOR_F16: return &set->f16;
    case TENSOR_BF16: return &set->bf16;
    case TENSOR_Q8_0: return &set->q8_0;
    case TENSOR_Q4_0: return &set->q4_0;
    case TENSOR_Q4_K: return &set->q4_K;
    case TENSOR_Q6_K: return &set->q6_K;
    case TENSOR_F32: return NULL;
    }
    return NULL;
}

size_t act_row_bytes(const type_kernels *tk, int64_t n)
{
    return (size_t)((n + tk->act_block_elems - 1) / tk->act_block_elems) * tk->act_block_bytes;
}
