/* The llama-tiny fixture for the decoder tests: its GGUF conversions (made by the converter in the
 * ctest fixture step, one per weight type, in the test's working directory) and its reference
 * arrays from tests/data/llama-tiny. */
#ifndef R2GEN_TESTS_LLAMA_TINY_MODEL_H
#define R2GEN_TESTS_LLAMA_TINY_MODEL_H

#include <stddef.h>

#include "core/gguf.h"
#include "llama/llama.h"

typedef struct tiny_model {
    gguf_file *file;
    llama_model *model;
} tiny_model;

/* Opens llama-tiny-<type>.gguf; returns 0, or -1 after printing why. */
int tiny_open(const char *type, tiny_model *out);
void tiny_close(tiny_model *t);

/* A float32 fixture array of exactly n_elems values (malloc'ed), or NULL after printing why. */
float *tiny_fixture(const char *name, size_t n_elems);

/* The compute settings every test uses: both cores, default backend. */
compute tiny_cpu(void);

/* Index of the largest of n values (lowest on ties). */
int argmax(const float *x, int n);

#endif
