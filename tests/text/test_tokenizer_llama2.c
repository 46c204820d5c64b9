/* The Llama-2 tokenizer against transformers 4.30.2's slow LlamaTokenizer
 * (tests/data/tokenizer/cases.json): every encode case (ids, pieces, decode of the ids) and decode
 * case (decode, R2GenGPT's decode), then invalid UTF-8, embedded NULs and 1 MB inputs.
 *
 * Needs the third-party llama2-tokenizer.model (../shared/data or $R2GEN_SHARED_DATA): the fixture
 * step of tests/text/CMakeLists.txt converts it to llama2-vocab.gguf in the working directory (or
 * give a GGUF as argv[1]); without the model the test is skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "test_paths.h"
#include "text_fixtures.h"

/* Generous for a sanitizer build; a release build takes a small fraction of it. */
#define LARGE_INPUT_SECONDS 10.0
#define LARGE_INPUT_BYTES (1u << 20)

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int same_text(const char *got, const json *want)
{
    return want && want->type == JSON_STRING && strlen(got) == want->string_len &&
           memcmp(got, want->string, want->string_len) == 0;
}

/* HF's tokenize() pieces are the vocabulary entries of the ids. */
static int pieces_match(const tokenizer *tok, const int32_t *ids, size_t n, const json *pieces)
{
    if (!pieces || pieces->type != JSON_ARRAY || pieces->n_items != n) return 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *text = tokenizer_token_text(tok, ids[i], &len);
        const json *want = &pieces->items[i];
        if (!text || len != want->string_len || memcmp(text, want->string, len) != 0) return 0;
    }
    return 1;
}

static void check_special_ids(const tokenizer *tok, const json *r2gengpt)
{
    CHECK(tokenizer_n_vocab(tok) == 32000, "n_vocab %d", (int)tokenizer_n_vocab(tok));
    CHECK(tokenizer_bos_id(tok) == (int32_t)json_get(r2gengpt, "bos_id")->number, "bos");
    CHECK(tokenizer_eos_id(tok) == (int32_t)json_get(r2gengpt, "eos_id")->number, "eos");
    CHECK(tokenizer_unk_id(tok) == (int32_t)json_get(r2gengpt, "unk_id")->number, "unk");
    CHECK(tokenizer_pad_id(tok) == (int32_t)json_get(r2gengpt, "pad_id")->number, "pad");
}

static void check_encode_cases(const tokenizer *tok, const json *cases)
{
    int ids_ok = 0, pieces_ok = 0, decoded_ok = 0;
    for (size_t c = 0; c < cases->n_items; c++) {
        const json *item = &cases->items[c];
        const json *text = json_get(item, "text");
        size_t n_want, n_got = 0;
        int32_t *want = json_ids(json_get(item, "ids"), &n_want);
        int32_t *got = NULL;
        char *decoded = NULL;
        error err = {0};
        int encoded =
            tokenizer_encode(tok, text->string, text->string_len, &got, &n_got, &err) == R2GEN_OK;
        int same_ids = encoded && ids_equal(got, n_got, want, n_want);
        int same_pieces = encoded && pieces_match(tok, got, n_got, json_get(item, "pieces"));
        int same_decoded = tokenizer_decode(tok, want, n_want, &decoded, &err) == R2GEN_OK &&
                           same_text(decoded, json_get(item, "decoded"));
        char got_text[4096], want_text[4096];
        CHECK(same_ids, "encode case %zu '%s': got %s, want %s", c, text->string,
              ids_string(got_text, sizeof got_text, got, n_got),
              ids_string(want_text, sizeof want_text, want, n_want));
        CHECK(same_pieces, "pieces of encode case %zu '%s'", c, text->string);
        CHECK(same_decoded, "decode of encode case %zu: got '%s', want '%s'", c,
              decoded ? decoded : err.message, json_get(item, "decoded")->string);
        ids_ok += same_ids;
        pieces_ok += same_pieces;
        decoded_ok += same_decoded;
        free(want);
        free(got);
        free(decoded);
    }
    printf("encode cases: ids %d/%zu, pieces %d/%zu, decoded %d/%zu\n", ids_ok, cases->n_items,
           pieces_ok, cases->n_items, decoded_ok, cases->n_items);
}

static void check_decode_cases(const tokenizer *tok, const json *cases)
{
    int text_ok = 0, report_ok = 0;
    for (size_t c = 0; c < cases->n_items; c++) {
        const json *item = &cases->items[c];
        size_t n;
        int32_t *ids = json_ids(json_get(item, "ids"), &n);
        char *text = NULL, *report = NULL;
        error err = {0};
        int same = tokenizer_decode(tok, ids, n, &text, &err) == R2GEN_OK &&
                   same_text(text, json_get(item, "text"));
        int same_report = tokenizer_decode_report(tok, ids, n, &report, &err) == R2GEN_OK &&
                          same_text(report, json_get(item, "r2gengpt_text"));
        const char *note = json_get(item, "note")->string;
        CHECK(same, "decode case %zu (%s): got '%s'", c, note, text ? text : err.message);
        CHECK(same_report, "R2GenGPT decode case %zu (%s): got '%s'", c, note,
              report ? report : err.message);
        text_ok += same;
        report_ok += same_report;
        free(ids);
        free(text);
        free(report);
    }
    printf("decode cases: text %d/%zu, r2gengpt_text %d/%zu\n", text_ok, cases->n_items, report_ok,
           cases->n_items);
}

/* Radiology sentences and reports, streamed token by token (tokenizer.h's streaming rule), show
 * what decode gives (those texts have no surrounding whitespace to strip). */
static void check_streaming(const tokenizer *tok, const json *cases)
{
    int streamed_ok = 0, n_streamed = 0;
    for (size_t c = 0; c < cases->n_items; c++) {
        const json *item = &cases->items[c];
        const char *group = json_get(item, "group")->string;
        if (strcmp(group, "radiology") != 0 && strcmp(group, "report") != 0) continue;
        size_t n;
        int32_t *ids = json_ids(json_get(item, "ids"), &n);
        char *streamed = stream_text(tok, ids, n);
        int same = streamed && same_text(streamed, json_get(item, "decoded"));
        CHECK(same, "streamed encode case %zu: '%s'", c, streamed ? streamed : "");
        streamed_ok += same;
        n_streamed++;
        free(streamed);
        free(ids);
    }
    printf("streamed: %d/%d radiology and report cases\n", streamed_ok, n_streamed);
}

/* SentencePiece's normaliser turns each byte that does not start a valid UTF-8 character into
 * U+FFFD; encoding must give what the repaired text gives, and decoding shows the U+FFFDs. */
static void check_invalid_utf8(const tokenizer *tok)
{
    static const struct {
        const char *bad, *repaired;
    } cases[] = {
        {"\xFF", "\xEF\xBF\xBD"},
        {"a\xFF-", "a\xEF\xBF\xBD-"},
        {"\x80 lone continuation", "\xEF\xBF\xBD lone continuation"},
        {"cut \xE2\x96", "cut \xEF\xBF\xBD\xEF\xBF\xBD"},           /* 2 of 3 bytes */
        {"\xF0\x9F\x98x", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx"}, /* 3 of 4 bytes */
        {"over\xC0\xAFlong", "over\xEF\xBF\xBD\xEF\xBF\xBDlong"},   /* overlong '/' */
        {"\xED\xA0\x80 surrogate", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD surrogate"},
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* > U+10FFFF */
        {"x\xFE</s>\xFFy", "x\xEF\xBF\xBD</s>\xEF\xBF\xBDy"},
    };
    /* Llama-2 has the pieces "▁" 29871, "�" 30140 and "��" 26308. */
    const int32_t one[] = {29871, 30140}, two[] = {29871, 26308};
    CHECK(encodes_to(tok, "\xFF", 1, one, 2), "one invalid byte");
    CHECK(encodes_to(tok, "\xFF\xFE", 2, two, 2), "two invalid bytes");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        error err = {0};
        int32_t *want = NULL;
        size_t n_want = 0;
        char *decoded = NULL;
        CHECK(tokenizer_encode(tok, cases[c].repaired, strlen(cases[c].repaired), &want, &n_want,
                               &err) == R2GEN_OK,
              "%s", err.message);
        CHECK(encodes_to(tok, cases[c].bad, strlen(cases[c].bad), want, n_want),
              "invalid UTF-8 case %zu", c);
        CHECK(tokenizer_decode_report(tok, want, n_want, &decoded, &err) == R2GEN_OK &&
                  strstr(decoded, "\xEF\xBF\xBD") != NULL,
              "decoding invalid UTF-8 case %zu shows U+FFFD: '%s'", c, decoded ? decoded : "");
        free(want);
        free(decoded);
    }
}

/* The length argument, not a NUL, ends the text: a NUL is the byte token <0x00> (id 3). The other
 * ids are the fixture's: "▁a" 263, "b" 29890, "▁" 29871, <s> 1, </s> 2. */
static void check_nuls(const tokenizer *tok)
{
    const int32_t a_nul_b[] = {263, 3, 29890};
    const int32_t nul[] = {29871, 3};
    const int32_t specials[] = {1, 29871, 3, 2, 29871, 3};
    const int32_t just_a[] = {263};
    CHECK(encodes_to(tok, "a\0b", 3, a_nul_b, 3), "a NUL b");
    CHECK(encodes_to(tok, "\0", 1, nul, 2), "lone NUL");
    CHECK(encodes_to(tok, "<s>\0</s>\0", 9, specials, 6), "NULs around special tokens");
    CHECK(encodes_to(tok, "abc", 1, just_a, 1), "length shorter than the string");
    CHECK(encodes_to(tok, NULL, 0, NULL, 0), "empty text");

    char *text = NULL;
    error err = {0};
    CHECK(tokenizer_decode(tok, a_nul_b, 3, &text, &err) == R2GEN_OK &&
              memcmp(text, "a\0b", 4) == 0,
          "decode keeps the NUL byte inside the text");
    free(text);
}

/* Encode text[0..len), check the time, and that decoding gives the text back. */
static void check_large_input(const tokenizer *tok, const char *what, const char *text, size_t len,
                              size_t expected_ids)
{
    error err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    char *back = NULL;
    double start = now_seconds();
    r2gen_status status = tokenizer_encode(tok, text, len, &ids, &n, &err);
    double seconds = now_seconds() - start;
    printf("1 MB of %s: %zu ids in %.3f s\n", what, n, seconds);
    CHECK(status == R2GEN_OK, "%s: %s", what, err.message);
    CHECK(seconds < LARGE_INPUT_SECONDS, "%s took %.2f s", what, seconds);
    if (expected_ids) CHECK(n == expected_ids, "%s: %zu ids, want %zu", what, n, expected_ids);
    CHECK(tokenizer_decode(tok, ids, n, &back, &err) == R2GEN_OK && strlen(back) == len &&
              memcmp(back, text, len) == 0,
          "%s: decode(encode(text)) differs from the text", what);
    free(ids);
    free(back);
}

static void check_large_inputs(const tokenizer *tok, const json *cases)
{
    char *text = malloc(LARGE_INPUT_BYTES + 1);
    CHECK(text != NULL, "out of memory");
    if (!text) return;

    /* Radiology sentences and reports, repeated: what the model reads and writes. */
    size_t len = 0;
    for (size_t c = 0; len < LARGE_INPUT_BYTES; c = (c + 1) % cases->n_items) {
        const json *item = &cases->items[c];
        const char *group = json_get(item, "group")->string;
        if (strcmp(group, "radiology") != 0 && strcmp(group, "report") != 0) continue;
        const json *sentence = json_get(item, "text");
        size_t n = sentence->string_len + 1;
        if (n > LARGE_INPUT_BYTES - len) n = LARGE_INPUT_BYTES - len;
        memcpy(text + len, sentence->string, n - 1);
        text[len + n - 1] = ' ';
        len += n;
    }
    text[len - 1] = '.'; /* a trailing space would decode the same, but keep the text plain */
    check_large_input(tok, "reports", text, len, 0);

    /* One run of spaces: every pair has the same score, so merging goes strictly left to right
     * and makes "▁" x 16 pieces from the dummy prefix on, then one lone "▁". */
    memset(text, ' ', LARGE_INPUT_BYTES);
    check_large_input(tok, "spaces", text, LARGE_INPUT_BYTES, (LARGE_INPUT_BYTES + 1 + 15) / 16);

    /* Arbitrary bytes: most are invalid UTF-8. Only speed and success are checked. */
    uint32_t state = 12345;
    for (size_t i = 0; i < LARGE_INPUT_BYTES; i++) {
        state = state * 1664525u + 1013904223u;
        text[i] = (char)(state >> 24);
    }
    error err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    double start = now_seconds();
    CHECK(tokenizer_encode(tok, text, LARGE_INPUT_BYTES, &ids, &n, &err) == R2GEN_OK, "%s",
          err.message);
    double seconds = now_seconds() - start;
    printf("1 MB of random bytes: %zu ids in %.3f s\n", n, seconds);
    CHECK(seconds < LARGE_INPUT_SECONDS, "random bytes took %.2f s", seconds);
    free(ids);
    free(text);
}

int main(int argc, char **argv)
{
    char model[4096], cases_path[4096];
    if (!shared_data_path(model, sizeof model, "llama2-tokenizer.model")) return TEST_SKIP_STATUS;
    tokenizer *tok = load_vocab_gguf(argc > 1 ? argv[1] : "llama2-vocab.gguf");
    json *cases = json_load(test_data_path(cases_path, sizeof cases_path, "tokenizer/cases.json"));
    CHECK(tok != NULL && cases != NULL, "cannot load the tokenizer or the cases");
    if (tok && cases) {
        const json *r2gengpt = json_get(cases, "r2gengpt");
        check_special_ids(tok, r2gengpt);
        check_prompt_halves(tok, r2gengpt, r2gengpt);
        check_encode_cases(tok, json_get(cases, "encode"));
        check_decode_cases(tok, json_get(cases, "decode"));
        check_streaming(tok, json_get(cases, "encode"));
        check_invalid_utf8(tok);
        check_nuls(tok);
        check_large_inputs(tok, json_get(cases, "encode"));
    }
    json_free(cases);
    tokenizer_free(tok);
    return check_summary();
}
