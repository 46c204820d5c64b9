/* The tokenizer of the tiny end-to-end fixture (tests/data/r2gen-tiny/llama/tokenizer.model, 512
 * pieces, converted by the fixture step to r2gen-tiny-vocab.gguf in the working directory, or give
 * a GGUF as argv[1]): R2GenGPT's prompt halves give expected.json's ids, each study's generated
 * `sequences` decode to its `report`, and a streamer following tokenizer.h's streaming rule shows
 * that report as the tokens arrive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "test_paths.h"
#include "text_fixtures.h"

static void check_study(const tokenizer *tok, const json *study)
{
    const char *name = json_get(study, "name")->string;
    const json *report = json_get(study, "report");
    size_t n, n_new;
    int32_t *sequence = json_ids(json_get(study, "sequences"), &n);
    int32_t *new_tokens = json_ids(json_get(study, "new_tokens"), &n_new);
    char *decoded = NULL;
    error err = {0};
    CHECK(tokenizer_decode_report(tok, sequence, n, &decoded, &err) == R2GEN_OK &&
              strcmp(decoded, report->string) == 0,
          "study %s: decoded '%s'\n  want '%s'", name, decoded ? decoded : err.message,
          report->string);

    char *streamed = stream_text(tok, new_tokens, n_new);
    /* Each of these studies has its <unk>s where a streamer shows what the report shows (see
     * tokenizer.h for where the two can differ by a space). */
    CHECK(streamed && decoded && strcmp(streamed, decoded) == 0,
          "study %s: streamed '%s'\n  decoded '%s'", name, streamed ? streamed : "",
          decoded ? decoded : "");
    free(streamed);
    free(decoded);
    free(sequence);
    free(new_tokens);
}

static void check_bad_ids(const tokenizer *tok)
{
    size_t len = 0;
    const int32_t outside[] = {5, tokenizer_n_vocab(tok)};
    const int32_t negative[] = {-1};
    char *text = NULL;
    error err = {0};
    CHECK(tokenizer_piece(tok, tokenizer_n_vocab(tok), &len) == NULL, "piece of id n_vocab");
    CHECK(tokenizer_piece(tok, -1, &len) == NULL, "piece of id -1");
    CHECK(tokenizer_token_text(tok, tokenizer_n_vocab(tok), &len) == NULL, "text of id n_vocab");
    CHECK(tokenizer_decode(tok, outside, 2, &text, &err) == R2GEN_ERR_INVALID_ARGUMENT && !text,
          "decode of id n_vocab");
    CHECK(tokenizer_decode_report(tok, negative, 1, &text, &err) == R2GEN_ERR_INVALID_ARGUMENT &&
              !text,
          "R2GenGPT decode of id -1");
    CHECK(tokenizer_decode_report(tok, NULL, 0, &text, &err) == R2GEN_OK && text && !*text,
          "R2GenGPT decode of nothing");
    free(text);
}

int main(int argc, char **argv)
{
    char expected_path[4096], cases_path[4096];
    tokenizer *tok = load_vocab_gguf(argc > 1 ? argv[1] : "r2gen-tiny-vocab.gguf");
    json *expected =
        json_load(test_data_path(expected_path, sizeof expected_path, "r2gen-tiny/expected.json"));
    json *cases = json_load(test_data_path(cases_path, sizeof cases_path, "tokenizer/cases.json"));
    CHECK(tok && expected && cases, "cannot load the tokenizer or the fixtures");
    if (tok && expected && cases) {
        CHECK(tokenizer_n_vocab(tok) == 512, "n_vocab %d", (int)tokenizer_n_vocab(tok));
        check_prompt_halves(tok, json_get(cases, "r2gengpt"), json_get(expected, "prompt"));
        const json *studies = json_get(expected, "studies");
        CHECK(studies && studies->n_items == 4, "four studies");
        for (size_t s = 0; studies && s < studies->n_items; s++)
            check_study(tok, &studies->items[s]);
        check_bad_ids(tok);
    }
    json_free(expected);
    json_free(cases);
    tokenizer_free(tok);
    return check_summary();
}
