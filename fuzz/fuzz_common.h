/* Shared by the fuzz targets: the micro model they load once (fuzz/corpus/gguf/micro-r2gen.gguf,
 * or $R2GEN_FUZZ_MODEL), and the check that turns a broken library promise into a crash the
 * fuzzer records. */
#ifndef R2GEN_FUZZ_COMMON_H
#define R2GEN_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>

#include "r2gen.h"

/* A violated property is a finding: stop here so libFuzzer saves the input. */
#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

/* One context on the micro model, single-threaded, made on first use and kept for the run. */
static inline r2gen_ctx *fuzz_model_context(void)
{
    static r2gen_ctx *ctx;
    if (ctx) return ctx;
    const char *path = getenv("R2GEN_FUZZ_MODEL");
    r2gen_load_params params = r2gen_load_params_default();
    params.n_threads = 1;
    FUZZ_ASSERT(r2gen_load(path ? path : R2GEN_FUZZ_MODEL, &params, &ctx) == R2GEN_OK);
    return ctx;
}

/* A failed call names its reason. */
static inline void fuzz_check_failure(const r2gen_ctx *ctx, r2gen_status status)
{
    if (status == R2GEN_OK) return;
    FUZZ_ASSERT(status != R2GEN_ERR_INTERNAL);
    const char *message = r2gen_last_error(ctx);
    FUZZ_ASSERT(message && message[0]);
}

#endif
