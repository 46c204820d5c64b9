/* Minimal assertions for the C tests: each failed check prints where and why and is counted;
 * a test program ends with `return check_summary();`, which prints "N passed, N failed". */
#ifndef R2GEN_TESTS_CHECK_H
#define R2GEN_TESTS_CHECK_H

#include <stdio.h>

extern int check_passed;
extern int check_failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Exit status 77 makes ctest report the test as skipped. */
#define TEST_SKIP_STATUS 77

int check_summary(void);

/* Largest |a[i] - b[i]| over n floats. */
double max_abs_diff(const float *a, const float *b, size_t n);

#endif
