/* The API core as an application sees it, linked against libr2gen.so: status strings, version,
 * parameter defaults and struct_size checks, and how r2gen_load fails. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "r2gen.h"
#include "test_paths.h"

static void test_strings(void)
{
    for (int s = R2GEN_OK; s <= R2GEN_ERR_INTERNAL; s++)
        CHECK(strcmp(r2gen_status_string((r2gen_status)s), "unknown status") != 0, "status %d", s);
    CHECK(!strcmp(r2gen_status_string((r2gen_status)99), "unknown status"), "out of range");
    CHECK(!strncmp(r2gen_version(), "0.1.0", 5), "version %s", r2gen_version());
    CHECK(strstr(r2gen_version(), "jpeg") != NULL, "version names the JPEG decoder");
}

static void test_load_failures(void)
{
    r2gen_ctx *ctx = (r2gen_ctx *)&ctx; /* must be overwritten with NULL */
    CHECK(r2gen_load("no-such-model.gguf", NULL, &ctx) == R2GEN_ERR_IO && ctx == NULL, "absent");
    CHECK(strstr(r2gen_last_error(NULL), "no-such-model.gguf") != NULL, "message: %s",
          r2gen_last_error(NULL));
    CHECK(r2gen_load(NULL, NULL, &ctx) == R2GEN_ERR_INVALID_ARGUMENT, "NULL path");
    CHECK(r2gen_load("x", NULL, NULL) == R2GEN_ERR_INVALID_ARGUMENT, "NULL out");

    r2gen_load_params params = r2gen_load_params_default();
    CHECK(params.struct_size == sizeof params && params.n_threads == 0 && !params.llm_path,
          "defaults");
    params.struct_size = 3;
    CHECK(r2gen_load("x", &params, &ctx) == R2GEN_ERR_INVALID_ARGUMENT, "struct_size too small");
    params.struct_size = sizeof params + 64;
    CHECK(r2gen_load("x", &params, &ctx) == R2GEN_ERR_INVALID_ARGUMENT, "struct_size too large");
    CHECK(strstr(r2gen_last_error(NULL), "struct_size") != NULL, "%s", r2gen_last_error(NULL));
    params = r2gen_load_params_default();
    params.n_threads = -1;
    CHECK(r2gen_load("x", &params, &ctx) == R2GEN_ERR_INVALID_ARGUMENT, "negative threads");

    char path[256];
    scratch_path(path, sizeof path, "not-gguf.bin");
    FILE *f = fopen(path, "wb");
    fputs("this is not a model", f);
    fclose(f);
    CHECK(r2gen_load(path, NULL, &ctx) == R2GEN_ERR_MODEL_FORMAT && ctx == NULL, "%s",
          r2gen_last_error(NULL));
    remove(path);
}

static void test_free_and_fork_null(void)
{
    r2gen_free(NULL);
    r2gen_ctx *out = NULL;
    CHECK(r2gen_ctx_fork(NULL, &out) == R2GEN_ERR_INVALID_ARGUMENT && out == NULL, "fork NULL");
}

int main(void)
{
    test_strings();
    test_load_failures();
    test_free_and_fork_null();
    return check_summary();
}
