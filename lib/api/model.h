/* A loaded model: the mapped GGUF file(s) and every stage's weights. Immutable after load and
 * shared by all contexts forked from the first one; freed when the last reference goes. */
#ifndef R2GEN_API_MODEL_H
#define R2GEN_API_MODEL_H

#include <stdatomic.h>

#include "core/error.h"
#include "core/gguf.h"

typedef struct model {
    atomic_int refcount;
    gguf_file *main_file; /* the file passed to r2gen_load */
    gguf_file *llm_file;  /* the separate LLaMA GGUF, or NULL */
} model;

r2gen_status model_load(const char *path, const char *llm_path, model **out, error *err);
model *model_retain(model *m);
void model_release(model *m);

#endif
