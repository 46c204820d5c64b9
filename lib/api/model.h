/* A loaded model: the mapped GGUF file(s) and every stage's weights. Immutable after load and
 * shared by all contexts forked from the first one; freed when the last reference goes. */
#ifndef R2GEN_API_MODEL_H
#define R2GEN_API_MODEL_H

#include <stdatomic.h>

#include "core/error.h"
#include "core/gguf.h"
#include "llama/llama.h"
#include "text/tokenizer.h"
#include "vision/projector.h"
#include "vision/swin.h"

/* R2GenGPT's prompt, used when the vision GGUF does not carry r2gen.prompt.*. */
#define MODEL_PROMPT_BEFORE "Human: <Img>"
#define MODEL_PROMPT_AFTER                                                                         \
    "</Img> Generate a comprehensive and detailed diagnosis report for this chest xray image. "  \
    "\nAssistant:"

typedef struct model {
    atomic_int refcount;
    gguf_file *main_file; /* the file passed to r2gen_load */
    gguf_file *llm_file;  /* the separate LLaMA GGUF, or NULL */

    int has_vision;       /* 0: a LLaMA-only file, text-only mode */
    swin_model swin;
    projector proj;
    char *prompt_before;  /* text between <s> and the image embeddings */
    char *prompt_after;   /* text after them */

    llama_model *llama;
    tokenizer *tok;
} model;

r2gen_status model_load(const char *path, const char *llm_path, int n_threads, model **out,
                        error *err);
model *model_retain(model *m);
void model_release(model *m);

#endif
