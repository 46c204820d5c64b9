/* The public text functions: tokenisation, token embeddings, and report generation (prompt
 * assembly around the image embeddings, the language model's search, R2GenGPT's clean-up). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "generate/generate.h"
#include "generate/llama_decoder.h"

#define PROMPT_IMAGE_MARKER "<ImageHere>"
#define MAX_BEAMS 16

static r2gen_generate_params preset_params(int min_new, int max_new)
{
    r2gen_generate_params params;
    memset(&params, 0, sizeof params);
    params.struct_size = sizeof params;
    params.num_beams = 3;
    params.min_new_tokens = min_new;
    params.max_new_tokens = max_new;
    params.repetition_penalty = 2.0f;
    params.length_penalty = 2.0f;
    params.temperature = 1.0f;
    params.top_p = 1.0f;
    return params;
}

r2gen_generate_params r2gen_generate_params_default(void) { return preset_params(80, 120); }

r2gen_generate_params r2gen_generate_params_preset(r2gen_preset preset)
{
    return preset == R2GEN_PRESET_IU_XRAY ? preset_params(40, 100) : preset_params(80, 120);
}

static r2gen_status read_generate_params(r2gen_ctx *ctx, const r2gen_generate_params *given,
                                         r2gen_generate_params *out)
{
    *out = r2gen_generate_params_default();
    if (given) {
        if (!copy_versioned_struct(out, sizeof *out, given, GENERATE_PARAMS_SIZE_0_1))
            return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT,
                            "r2gen_generate_params.struct_size is %zu; use "
                            "r2gen_generate_params_default()",
                            given->struct_size);
    }
    const r2gen_generate_params *p = out;
    if (p->num_beams < 1 || p->num_beams > MAX_BEAMS)
        return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT, "num_beams must be 1..%d", MAX_BEAMS);
    if (p->max_new_tokens < 1 || p->min_new_tokens < 0)
        return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT,
                        "max_new_tokens must be at least 1 and min_new_tokens not negative");
    if (!(p->repetition_penalty > 0.0f) || p->length_penalty != p->length_penalty)
        return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT,
                        "repetition_penalty must be positive and length_penalty a number");
    if (p->do_sample && (p->num_beams != 1 || !(p->temperature > 0.0f) || !(p->top_p > 0.0f) ||
                         p->top_p > 1.0f || p->top_k < 0))
        return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT,
                        "sampling needs num_beams 1, temperature > 0, top_k >= 0, top_p in (0, 1]");
    return R2GEN_OK;
}

int r2gen_n_embd(const r2gen_ctx *ctx) { return ctx ? llama_get_config(ctx->model->llama)->n_embd : 0; }
int r2gen_n_vocab(const r2gen_ctx *ctx) { return ctx ? llama_get_config(ctx->model->llama)->n_vocab : 0; }

r2gen_status r2gen_tokenize(const r2gen_ctx *ctx, const char *text, int32_t *ids, size_t capacity,
                            size_t *n_ids)
{
    if (!ctx || !text || !n_ids) return R2GEN_ERR_INVALID_ARGUMENT;
    int32_t *encoded = NULL;
    size_t n = 0;
    error err;
    r2gen_status status = tokenizer_encode(ctx->model->tok, text, strlen(text), &encoded, &n, &err);
    if (status != R2GEN_OK) return status;
    *n_ids = n;
    if (ids && capacity < n) status = R2GEN_ERR_BUFFER_TOO_SMALL;
    else if (ids && n) memcpy(ids, encoded, n * sizeof *ids);
    free(encoded);
    return status;
}

r2gen_status r2gen_detokenize(const r2gen_ctx *ctx, const int32_t *ids, size_t n_ids, char **text)
{
    if (!ctx || !text || (!ids && n_ids)) return R2GEN_ERR_INVALID_ARGUMENT;
    *text = NULL;
    error err;
    return tokenizer_decode(ctx->model->tok, ids, n_ids, text, &err);
}

r2gen_status r2gen_get_token_embeddings(const r2gen_ctx *ctx, const int32_t *ids, size_t n_ids,
                                        float *out, size_t count)
{
    if (!ctx || (!ids && n_ids) || (!out && n_ids)) return R2GEN_ERR_INVALID_ARGUMENT;
    const llama_config *config = llama_get_config(ctx->model->llama);
    if (n_ids > count / (size_t)config->n_embd) return R2GEN_ERR_BUFFER_TOO_SMALL;
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= config->n_vocab) return R2GEN_ERR_INVALID_ARGUMENT;
    error err;
    return llama_embed_tokens(ctx->model->llama, ids, n_ids, out, &err);
}

/* A session with room for rows x positions, reusing the context's when it is large enough. */
static r2gen_status ensure_session(r2gen_ctx *ctx, int rows, int positions)
{
    const llama_config *config = llama_get_config(ctx->model->llama);
    if (positions > config->n_ctx)
        return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT,
                        "the prompt and max_new_tokens need %d positions; the model allows %d",
                        positions, config->n_ctx);
    if (ctx->session && ctx->session_rows >= rows && ctx->session_positions >= positions)
        return R2GEN_OK;
    llama_session_free(ctx->session);
    ctx->session = NULL;
    ctx->session_rows = ctx->session_positions = 0;
    r2gen_status status =
        llama_session_create(ctx->model->llama, rows, positions, ctx->kv, &ctx->session,
                             &ctx->last_error);
    if (status == R2GEN_OK) {
        ctx->session_rows = rows;
        ctx->session_positions = positions;
    }
    return status;
}

/* The caller's callbacks, reached from generate.c's single user pointer. Token streaming (greedy
 * search and sampling) passes each token's text, with the whitespace before the first visible
 * character dropped, as the report's strip() drops it. */
typedef struct callbacks {
    const r2gen_ctx *ctx;
    const r2gen_generate_params *params;
    int started;
} callbacks;

static int forward_progress(void *user, int step, int max_steps)
{
    const callbacks *cb = user;
    return cb->params->progress(cb->params->user_data, step, max_steps);
}

static int forward_token(void *user, int32_t id)
{
    callbacks *cb = user;
    const tokenizer *tok = cb->ctx->model->tok;
    size_t len = 0;
    const char *piece = id == tokenizer_eos_id(tok) ? NULL : tokenizer_piece(tok, id, &len);
    if (!piece) piece = "", len = 0;
    while (!cb->started && len && (*piece == ' ' || *piece == '\n' || *piece == '\t')) {
        piece++;
        len--;
    }
    if (len) cb->started = 1;
    return cb->params->on_token(cb->params->user_data, id, piece, len);
}

static generate_config make_config(const r2gen_ctx *ctx, const r2gen_generate_params *p,
                                   callbacks *cb)
{
    const tokenizer *tok = ctx->model->tok;
    *cb = (callbacks){ctx, p, 0};
    return (generate_config){
        .num_beams = p->num_beams,
        .min_new_tokens = p->min_new_tokens,
        .max_new_tokens = p->max_new_tokens,
        .repetition_penalty = p->repetition_penalty,
        .length_penalty = p->length_penalty,
        .do_sample = p->do_sample,
        .temperature = p->temperature,
        .top_k = p->top_k,
        .top_p = p->top_p,
        .seed = p->seed,
        .bos_id = tokenizer_bos_id(tok),
        .eos_id = tokenizer_eos_id(tok),
        .pad_id = tokenizer_pad_id(tok),
        .eos_disabled = p->ignore_eos,
        .progress = p->progress ? forward_progress : NULL,
        .on_token = p->on_token && p->num_beams == 1 ? forward_token : NULL,
        .user = cb,
    };
}

/* Run the search on prompt embeddings and keep the tokens and the report text. */
static r2gen_status run_generation(r2gen_ctx *ctx, const float *embeddings, int n_positions,
                                   const r2gen_generate_params *p, char **report)
{
    r2gen_status status = ensure_session(ctx, p->num_beams, n_positions + p->max_new_tokens);
    if (status != R2GEN_OK) return status;
    callbacks cb;
    generate_config cfg = make_config(ctx, p, &cb);
    decoder d = llama_decoder(ctx->session, ctx->model->llama);
    generate_result result = {0};
    status = generate_run(&d, &ctx->cpu, embeddings, n_positions, &cfg, &result, &ctx->last_error);
    if (status != R2GEN_OK) return status;
    char *text = NULL;
    status = tokenizer_decode_report(ctx->model->tok, result.sequence, result.n, &text,
                                     &ctx->last_error);
    if (status != R2GEN_OK) {
        generate_result_free(&result);
        return status;
    }
    /* keep the new tokens: the sequence without the leading <s> that is never fed */
    free(ctx->report_tokens);
    ctx->n_report_tokens = result.n - 1;
    memmove(result.sequence, result.sequence + 1, ctx->n_report_tokens * sizeof *result.sequence);
    ctx->report_tokens = result.sequence;
    *report = text;
    return R2GEN_OK;
}

static r2gen_status begin_generation(r2gen_ctx *ctx, const r2gen_generate_params *given,
                                     r2gen_generate_params *params, char **report)
{
    ctx_begin(ctx);
    if (!report) return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT, "report is NULL");
    *report = NULL;
    return read_generate_params(ctx, given, params);
}

r2gen_status r2gen_generate_from_embeddings(r2gen_ctx *ctx, const float *embeddings,
                                            size_t n_positions,
                                            const r2gen_generate_params *params, char **report)
{
    if (!ctx) return R2GEN_ERR_INVALID_ARGUMENT;
    r2gen_generate_params p;
    r2gen_status status = begin_generation(ctx, params, &p, report);
    if (status != R2GEN_OK) return status;
    if (!embeddings || n_positions == 0 || n_positions > (size_t)llama_get_config(ctx->model->llama)->n_ctx)
        return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT,
                        "embeddings must be non-NULL with 1..n_ctx positions");
    size_t n_values = n_positions * (size_t)llama_get_config(ctx->model->llama)->n_embd;
    for (size_t i = 0; i < n_values; i++)
        if (!isfinite(embeddings[i]))
            return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT,
                            "embeddings[%zu] is not finite (NaN or infinity)", i);
    return run_generation(ctx, embeddings, (int)n_positions, &p, report);
}

/* ---- R2GenGPT's prompt ---- */

typedef struct prompt_ids {
    int32_t *before, *after;
    size_t n_before, n_after;
} prompt_ids;

/* Tokenise the prompt halves: the caller's prompt split at <ImageHere>, or the model's. */
static r2gen_status tokenize_prompt(r2gen_ctx *ctx, const char *prompt, prompt_ids *ids)
{
    const model *m = ctx->model;
    const char *before = m->prompt_before, *after = m->prompt_after;
    size_t before_len = strlen(before);
    if (prompt) {
        const char *marker = strstr(prompt, PROMPT_IMAGE_MARKER);
        if (!marker || strstr(marker + 1, PROMPT_IMAGE_MARKER))
            return ctx_fail(ctx, R2GEN_ERR_INVALID_ARGUMENT,
                            "the prompt must contain " PROMPT_IMAGE_MARKER " exactly once");
        before = prompt;
        before_len = (size_t)(marker - prompt);
        after = marker + strlen(PROMPT_IMAGE_MARKER);
    }
    r2gen_status status =
        tokenizer_encode(m->tok, before, before_len, &ids->before, &ids->n_before, &ctx->last_error);
    if (status == R2GEN_OK)
        status = tokenizer_encode(m->tok, after, strlen(after), &ids->after, &ids->n_after,
                                  &ctx->last_error);
    return status;
}

/* [<s>] + before + image embeddings + after, as rows of n_embd floats. */
static r2gen_status assemble_prompt(r2gen_ctx *ctx, const prompt_ids *ids, float **out, int *n_out)
{
    const model *m = ctx->model;
    size_t n_embd = (size_t)m->proj.n_embd, n_image = (size_t)m->swin.n_tokens;
    size_t n = 1 + ids->n_before + n_image + ids->n_after;
    float *rows = malloc(n * n_embd * sizeof *rows);
    if (!rows) return ctx_fail(ctx, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    int32_t bos = tokenizer_bos_id(m->tok);
    float *at = rows;
    r2gen_status status = llama_embed_tokens(m->llama, &bos, 1, at, &ctx->last_error);
    at += n_embd;
    if (status == R2GEN_OK)
        status = llama_embed_tokens(m->llama, ids->before, ids->n_before, at, &ctx->last_error);
    at += ids->n_before * n_embd;
    memcpy(at, ctx->embeddings, n_image * n_embd * sizeof *at);
    at += n_image * n_embd;
    if (status == R2GEN_OK)
        status = llama_embed_tokens(m->llama, ids->after, ids->n_after, at, &ctx->last_error);
    if (status != R2GEN_OK) {
        free(rows);
        return status;
    }
    *out = rows;
    *n_out = (int)n;
    return R2GEN_OK;
}

r2gen_status r2gen_generate_report(r2gen_ctx *ctx, const r2gen_generate_params *params,
                                   char **report)
{
    if (!ctx) return R2GEN_ERR_INVALID_ARGUMENT;
    r2gen_generate_params p;
    r2gen_status status = begin_generation(ctx, params, &p, report);
    if (status != R2GEN_OK) return status;
    if (!ctx->model->has_vision)
        return ctx_fail(ctx, R2GEN_ERR_UNSUPPORTED,
                        "this model has no vision part: use r2gen_generate_from_embeddings");
    if (ctx->n_views == 0)
        return ctx_fail(ctx, R2GEN_ERR_NO_IMAGE, "no view was added: call r2gen_encode_image* first");
    prompt_ids ids = {0};
    float *embeddings = NULL;
    int n_positions = 0;
    status = tokenize_prompt(ctx, p.prompt, &ids);
    if (status == R2GEN_OK) status = assemble_prompt(ctx, &ids, &embeddings, &n_positions);
    if (status == R2GEN_OK) status = run_generation(ctx, embeddings, n_positions, &p, report);
    free(ids.before);
    free(ids.after);
    free(embeddings);
    return status;
}

r2gen_status r2gen_get_report_tokens(const r2gen_ctx *ctx, const int32_t **ids, size_t *n_ids)
{
    if (!ctx || !ids || !n_ids) return R2GEN_ERR_INVALID_ARGUMENT;
    *ids = ctx->report_tokens;
    *n_ids = ctx->n_report_tokens;
    return R2GEN_OK;
}
