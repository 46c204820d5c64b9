/* What the tokenizer tests share: opening a vocabulary GGUF, id arrays from JSON, comparing and
 * printing id sequences, the prompt check and a streaming token callback. */
#ifndef R2GEN_TESTS_TEXT_FIXTURES_H
#define R2GEN_TESTS_TEXT_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "text/tokenizer.h"

/* Open a GGUF and load its tokenizer; on failure prints why and returns NULL. The GGUF file is
 * closed again: the tokenizer keeps copies of everything. */
tokenizer *load_vocab_gguf(const char *path);

/* A JSON array of integers as a new int32 array (NULL and *n = 0 for an empty one). */
int32_t *json_ids(const json *array, size_t *n);

int ids_equal(const int32_t *a, size_t n_a, const int32_t *b, size_t n_b);

/* "[1, 2, 3]" into buf (cut short if it does not fit); returns buf. */
const char *ids_string(char *buf, size_t size, const int32_t *ids, size_t n);

/* Encode text[0..len) and compare with the expected ids; prints both on a mismatch. */
int encodes_to(const tokenizer *tok, const char *text, size_t len, const int32_t *expected,
               size_t n_expected);

/* Check that the R2GenGPT prompt halves texts.before_text / after_text encode to
 * ids.before_ids / after_ids. */
void check_prompt_halves(const tokenizer *tok, const json *texts, const json *ids);

/* What a token callback following tokenizer.h's streaming rule shows for generated ids: skip
 * whitespace until the first visible character, stop at EOS, hold trailing whitespace back until
 * something visible follows. Byte tokens are passed on as they come (the texts streamed in the
 * tests are ASCII). Returns a new string. */
char *stream_text(const tokenizer *tok, const int32_t *ids, size_t n);

#endif
