/* A scripted decoder for the generation tests: the logits of a row are whatever the test's
 * script says for that row's history (the tokens fed so far), so every decision can be set up
 * by hand. It replays beam reordering through parent_rows exactly as the real KV cache must,
 * checks the arguments generate passes, and counts calls. */
#ifndef R2GEN_TESTS_FAKE_DECODER_H
#define R2GEN_TESTS_FAKE_DECODER_H

#include <stdint.h>

#include "generate/generate.h"

/* Writes n_vocab logits for a row whose fed tokens are history[0..n). */
typedef void (*fake_script)(const int32_t *history, int n, float *logits, int n_vocab,
                            void *user);

typedef struct fake_decoder {
    int n_vocab, max_rows, max_steps;
    fake_script script;
    void *user;
    int32_t *history, *next_history; /* max_rows x max_steps */
    int n_rows;                      /* rows of the previous decode; 0 right after prefill */
    int n_fed;                       /* tokens fed per row since the prefill */
    int n_prefill, n_decode;         /* calls */
    int misuse;                      /* arguments that a real session would reject */
} fake_decoder;

/* Returns 0, or -1 when out of memory. */
int fake_decoder_init(fake_decoder *f, int n_vocab, int max_rows, int max_steps,
                      fake_script script, void *user);
void fake_decoder_free(fake_decoder *f);
decoder fake_decoder_interface(fake_decoder *f);

#endif
