/* Where test inputs live. Project fixtures are under tests/data (committed); third-party data
 * (the Llama-2 tokenizer, real X-rays) is read from ../shared/data or $R2GEN_SHARED_DATA and is
 * never committed, so tests that need it skip when it is absent. */
#ifndef R2GEN_TESTS_PATHS_H
#define R2GEN_TESTS_PATHS_H

#include <stddef.h>

/* tests/data/<relative> into buf; returns buf. */
const char *test_data_path(char *buf, size_t size, const char *relative);

/* <shared data>/<relative> into buf if that file exists, else NULL (after printing a visible
 * "skipping: ..." line naming what is missing). */
const char *shared_data_path(char *buf, size_t size, const char *relative);

/* A fresh path for a scratch file in the build's test directory. */
const char *scratch_path(char *buf, size_t size, const char *name);

#endif
