/* Reader for the NumPy .npy files of the reference fixtures (little-endian; C or Fortran order,
 * returned in C order;
 * dtypes <f4, <i8, |u1). */
#ifndef R2GEN_TESTS_NPY_H
#define R2GEN_TESTS_NPY_H

#include <stddef.h>
#include <stdint.h>

typedef struct npy_array {
    char dtype[8];      /* "<f4", "<i8", "|u1" */
    int n_dims;
    size_t shape[8];
    size_t n_elems;
    size_t elem_size;
    void *data;         /* malloc'ed, n_elems * elem_size bytes */
} npy_array;

/* Returns 0 on success; on failure prints why to stderr and returns -1. */
int npy_load(const char *path, npy_array *out);
void npy_free(npy_array *a);

#endif
