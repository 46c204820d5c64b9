#include "model.h"

#include <stdlib.h>

r2gen_status model_load(const char *path, const char *llm_path, model **out, error *err)
{
    *out = NULL;
    model *m = calloc(1, sizeof *m);
    if (!m) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    atomic_init(&m->refcount, 1);
    r2gen_status status = gguf_open(path, &m->main_file, err);
    if (status == R2GEN_OK && llm_path) status = gguf_open(llm_path, &m->llm_file, err);
    if (status != R2GEN_OK) {
        model_release(m);
        return status;
    }
    *out = m;
    return R2GEN_OK;
}

model *model_retain(model *m)
{
    atomic_fetch_add(&m->refcount, 1);
    return m;
}

void model_release(model *m)
{
    if (!m || atomic_fetch_sub(&m->refcount, 1) != 1) return;
    gguf_close(m->llm_file);
    gguf_close(m->main_file);
    free(m);
}
