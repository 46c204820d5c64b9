#include "model.h"

#include <stdlib.h>
#include <string.h>

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy) memcpy(copy, s, n);
    return copy;
}

/* The prompt halves: the file's r2gen.prompt.* when present, R2GenGPT's otherwise. */
static r2gen_status load_prompt(model *m, error *err)
{
    const gguf_file *f = m->main_file;
    r2gen_status status = R2GEN_OK;
    if (gguf_find(f, "r2gen.prompt.before"))
        status = gguf_get_string(f, "r2gen.prompt.before", &m->prompt_before, err);
    else
        m->prompt_before = copy_string(MODEL_PROMPT_BEFORE);
    if (status == R2GEN_OK && gguf_find(f, "r2gen.prompt.after"))
        status = gguf_get_string(f, "r2gen.prompt.after", &m->prompt_after, err);
    else if (status == R2GEN_OK)
        m->prompt_after = copy_string(MODEL_PROMPT_AFTER);
    if (status == R2GEN_OK && (!m->prompt_before || !m->prompt_after))
        status = error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    return status;
}

static r2gen_status load_vision(model *m, error *err)
{
    r2gen_status status = swin_load(m->main_file, &m->swin, err);
    if (status == R2GEN_OK) status = projector_load(m->main_file, &m->proj, err);
    if (status == R2GEN_OK) status = load_prompt(m, err);
    if (status != R2GEN_OK) error_prefix(err, "%s: ", gguf_path(m->main_file));
    return status;
}

static r2gen_status load_language(model *m, const gguf_file *f, int n_threads, error *err)
{
    r2gen_status status = llama_load(f, n_threads, &m->llama, err);
    if (status == R2GEN_OK) status = tokenizer_load(f, &m->tok, err);
    if (status == R2GEN_OK && tokenizer_n_vocab(m->tok) != llama_get_config(m->llama)->n_vocab)
        status = error_set(err, R2GEN_ERR_MODEL_FORMAT,
                           "the tokenizer has %d tokens but the model's vocabulary is %d",
                           tokenizer_n_vocab(m->tok), llama_get_config(m->llama)->n_vocab);
    if (status != R2GEN_OK) error_prefix(err, "%s: ", gguf_path(f));
    return status;
}

/* Which file holds the LLaMA: the separate one when given, else the main file if it has one. */
static r2gen_status pick_language_file(const model *m, const gguf_file **out, error *err)
{
    if (m->llm_file) {
        *out = m->llm_file;
        return R2GEN_OK;
    }
    if (gguf_find(m->main_file, "llama.embedding_length")) {
        *out = m->main_file;
        return R2GEN_OK;
    }
    return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                     "%s holds no LLaMA (no llama.embedding_length): pass the Llama-2 GGUF as "
                     "llm_path",
                     gguf_path(m->main_file));
}

static r2gen_status check_widths(const model *m, error *err)
{
    int n_embd = llama_get_config(m->llama)->n_embd;
    if (m->has_vision && m->proj.n_embd != n_embd)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "the projector writes %d-wide embeddings but the LLaMA is %d wide",
                         m->proj.n_embd, n_embd);
    return R2GEN_OK;
}

static r2gen_status load_parts(model *m, const char *path, const char *llm_path, int n_threads,
                               error *err)
{
    r2gen_status status = gguf_open(path, &m->main_file, err);
    if (status == R2GEN_OK && llm_path) status = gguf_open(llm_path, &m->llm_file, err);
    if (status != R2GEN_OK) return status;
    m->has_vision = gguf_find(m->main_file, "r2gen.vision.embed_dim") != NULL;
    if (m->has_vision) status = load_vision(m, err);
    const gguf_file *language_file = NULL;
    if (status == R2GEN_OK) status = pick_language_file(m, &language_file, err);
    if (status == R2GEN_OK) status = load_language(m, language_file, n_threads, err);
    if (status == R2GEN_OK) status = check_widths(m, err);
    return status;
}

r2gen_status model_load(const char *path, const char *llm_path, int n_threads, model **out,
                        error *err)
{
    *out = NULL;
    model *m = calloc(1, sizeof *m);
    if (!m) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    atomic_init(&m->refcount, 1);
    r2gen_status status = load_parts(m, path, llm_path, n_threads, err);
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
    tokenizer_free(m->tok);
    llama_free(m->llama);
    if (m->has_vision) swin_free(&m->swin);
    free(m->prompt_before);
    free(m->prompt_after);
    gguf_close(m->llm_file);
    gguf_close(m->main_file);
    free(m);
}
