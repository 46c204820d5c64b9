#include "text_fixtures.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

tokenizer *load_vocab_gguf(const char *path)
{
    error err = {0};
    gguf_file *file = NULL;
    tokenizer *tok = NULL;
    if (gguf_open(path, &file, &err) != R2GEN_OK || tokenizer_load(file, &tok, &err) != R2GEN_OK) {
        fprintf(stderr, "cannot load the tokenizer of %s: %s\n", path, err.message);
        tok = NULL;
    }
    gguf_close(file);
    return tok;
}

int32_t *json_ids(const json *array, size_t *n)
{
    *n = 0;
    if (!array || array->type != JSON_ARRAY || array->n_items == 0) return NULL;
    int32_t *ids = malloc(array->n_items * sizeof *ids);
    if (!ids) return NULL;
    for (size_t i = 0; i < array->n_items; i++) ids[i] = (int32_t)array->items[i].number;
    *n = array->n_items;
    return ids;
}

int ids_equal(const int32_t *a, size_t n_a, const int32_t *b, size_t n_b)
{
    if (n_a != n_b) return 0;
    for (size_t i = 0; i < n_a; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

const char *ids_string(char *buf, size_t size, const int32_t *ids, size_t n)
{
    size_t at = (size_t)snprintf(buf, size, "[");
    for (size_t i = 0; i < n && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, i ? ", %d" : "%d", (int)ids[i]);
    if (at < size) snprintf(buf + at, size - at, "]");
    return buf;
}

int encodes_to(const tokenizer *tok, const char *text, size_t len, const int32_t *expected,
               size_t n_expected)
{
    error err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenizer_encode(tok, text, len, &ids, &n, &err) != R2GEN_OK) {
        fprintf(stderr, "encode failed: %s\n", err.message);
        return 0;
    }
    int same = ids_equal(ids, n, expected, n_expected);
    if (!same) {
        char got_text[2048], want_text[2048];
        fprintf(stderr, "encode %s\n  got  %s\n  want %s\n", text,
                ids_string(got_text, sizeof got_text, ids, n),
                ids_string(want_text, sizeof want_text, expected, n_expected));
    }
    free(ids);
    return same;
}

void check_prompt_halves(const tokenizer *tok, const json *texts, const json *ids)
{
    static const char *const halves[2][2] = {{"before_text", "before_ids"},
                                             {"after_text", "after_ids"}};
    for (int h = 0; h < 2; h++) {
        const json *text = json_get(texts, halves[h][0]);
        size_t n;
        int32_t *want = json_ids(json_get(ids, halves[h][1]), &n);
        CHECK(text && n > 0 && encodes_to(tok, text->string, text->string_len, want, n),
              "prompt %s", halves[h][0]);
        free(want);
    }
}

typedef struct streamer {
    char *text; /* everything since the first visible character */
    size_t n_text;
    size_t n_visible; /* what is shown: text[0..n_visible), up to the last visible character */
} streamer;

static void stream_byte(streamer *s, char c)
{
    int space = isspace((unsigned char)c);
    if (space && s->n_text == 0) return;
    s->text[s->n_text++] = c;
    if (!space) s->n_visible = s->n_text;
}

char *stream_text(const tokenizer *tok, const int32_t *ids, size_t n)
{
    size_t capacity = 1;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        tokenizer_piece(tok, ids[i], &len);
        capacity += len; /* everything shown came from some piece */
    }
    streamer s = {malloc(capacity), 0, 0};
    if (!s.text) return NULL;
    for (size_t i = 0; i < n && ids[i] != tokenizer_eos_id(tok); i++) {
        size_t len = 0;
        const char *piece = tokenizer_piece(tok, ids[i], &len);
        for (size_t k = 0; piece && k < len; k++) stream_byte(&s, piece[k]);
    }
    s.text[s.n_visible] = '\0';
    return s.text;
}
