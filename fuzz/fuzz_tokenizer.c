/* The tokenizer on arbitrary bytes, with the micro model's 512-piece Llama-style vocabulary:
 * encode the bytes as text (embedded NULs, invalid UTF-8 and special-token texts included), check
 * every id is in the vocabulary and decode them back; then read the same bytes as token ids
 * (some outside the vocabulary) and decode them as HF does, as R2GenGPT's report does, and piece
 * by piece as the streaming callback does. Through the public r2gen_tokenize as well. */
#include <string.h>

#include "api/context.h"
#include "fuzz_common.h"
#include "text/tokenizer.h"

static void encode_and_decode(const tokenizer *tok, const uint8_t *data, size_t size)
{
    error err;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    r2gen_status status = tokenizer_encode(tok, (const char *)data, size, &ids, &n_ids, &err);
    FUZZ_ASSERT(status == R2GEN_OK || status == R2GEN_ERR_OUT_OF_MEMORY);
    for (size_t i = 0; i < n_ids; i++) FUZZ_ASSERT(ids[i] >= 0 && ids[i] < tokenizer_n_vocab(tok));
    char *text = NULL;
    if (status == R2GEN_OK) {
        status = tokenizer_decode(tok, ids, n_ids, &text, &err);
        FUZZ_ASSERT(status == R2GEN_OK || status == R2GEN_ERR_OUT_OF_MEMORY);
    }
    free(text);
    free(ids);
}

/* Every two bytes are one id in [-4, n_vocab + 4). */
static void decode_ids(const tokenizer *tok, const uint8_t *data, size_t size)
{
    size_t n = size / 2;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return;
    int32_t n_vocab = tokenizer_n_vocab(tok);
    int invalid = 0;
    for (size_t i = 0; i < n; i++) {
        ids[i] = (int32_t)((data[2 * i] | data[2 * i + 1] << 8) % (n_vocab + 8)) - 4;
        size_t len;
        const char *piece = tokenizer_piece(tok, ids[i], &len);
        int in_vocab = ids[i] >= 0 && ids[i] < n_vocab;
        FUZZ_ASSERT((piece != NULL) == in_vocab);
        invalid |= !in_vocab;
    }
    error err;
    char *text = NULL, *report = NULL;
    r2gen_status status = tokenizer_decode(tok, ids, n, &text, &err);
    FUZZ_ASSERT(invalid ? status == R2GEN_ERR_INVALID_ARGUMENT
                        : status == R2GEN_OK || status == R2GEN_ERR_OUT_OF_MEMORY);
    status = tokenizer_decode_report(tok, ids, n, &report, &err);
    FUZZ_ASSERT(status != R2GEN_ERR_INTERNAL);
    free(text);
    free(report);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    r2gen_ctx *ctx = fuzz_model_context();
    const tokenizer *tok = ctx->model->tok;
    encode_and_decode(tok, data, size);
    decode_ids(tok, data, size);

    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t n_ids = 0;
    r2gen_status status = r2gen_tokenize(ctx, text, NULL, 0, &n_ids);
    FUZZ_ASSERT(status == R2GEN_OK || status == R2GEN_ERR_OUT_OF_MEMORY);
    free(text);
    return 0;
}
