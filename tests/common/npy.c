#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int check_passed;
int check_failed;

int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

double max_abs_diff(const float *a, const float *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        if (d < 0) d = -d;
        if (d > worst || d != d) worst = d != d ? 1e30 : d;
    }
    return worst;
}

static size_t dtype_size(const char *dtype)
{
    if (!strcmp(dtype, "<f4") || !strcmp(dtype, "<i4")) return 4;
    if (!strcmp(dtype, "<i8")) return 8;
    if (!strcmp(dtype, "|u1")) return 1;
    if (!strcmp(dtype, "<u2")) return 2;
    return 0;
}

static int parse_header(const char *header, npy_array *out, int *fortran_order)
{
    const char *descr = strstr(header, "'descr': '");
    const char *shape = strstr(header, "'shape': (");
    if (!descr || !shape) return -1;
    *fortran_order = strstr(header, "'fortran_order': True") != NULL;
    descr += strlen("'descr': '");
    size_t n = strcspn(descr, "'");
    if (n >= sizeof out->dtype) return -1;
    memcpy(out->dtype, descr, n);
    out->dtype[n] = '\0';
    out->elem_size = dtype_size(out->dtype);
    if (!out->elem_size) return -1;
    shape += strlen("'shape': (");
    out->n_dims = 0;
    out->n_elems = 1;
    while (*shape && *shape != ')') {
        char *end;
        unsigned long long dim = strtoull(shape, &end, 10);
        if (end == shape) break;
        if (out->n_dims == 8) return -1;
        out->shape[out->n_dims++] = (size_t)dim;
        out->n_elems *= (size_t)dim;
        shape = end;
        while (*shape == ',' || *shape == ' ') shape++;
    }
    return 0;
}

/* Reorder column-major (Fortran) data to the row-major order every test expects. */
static int to_c_order(npy_array *a)
{
    char *c_order = malloc(a->n_elems * a->elem_size + 1);
    if (!c_order) return -1;
    size_t index[8] = {0};
    for (size_t i = 0; i < a->n_elems; i++) {
        size_t offset = 0, stride = 1;
        for (int d = 0; d < a->n_dims; d++) {
            offset += index[d] * stride;
            stride *= a->shape[d];
        }
        memcpy(c_order + i * a->elem_size, (char *)a->data + offset * a->elem_size, a->elem_size);
        for (int d = a->n_dims - 1; d >= 0 && ++index[d] == a->shape[d]; d--) index[d] = 0;
    }
    free(a->data);
    a->data = c_order;
    return 0;
}

int npy_load(const char *path, npy_array *out)
{
    int fortran_order = 0;
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "npy: cannot open %s\n", path);
        return -1;
    }
    unsigned char preamble[10];
    int ok = fread(preamble, 1, 10, f) == 10 && !memcmp(preamble, "\x93NUMPY", 6);
    size_t header_len = 0;
    if (ok && preamble[6] == 1) {
        header_len = preamble[8] | (size_t)preamble[9] << 8;
    } else if (ok) { /* versions 2 and 3: 4-byte length */
        unsigned char more[2];
        ok = fread(more, 1, 2, f) == 2;
        header_len = preamble[8] | (size_t)preamble[9] << 8 | (size_t)more[0] << 16 |
                     (size_t)more[1] << 24;
    }
    char *header = ok ? calloc(1, header_len + 1) : NULL;
    ok = header && fread(header, 1, header_len, f) == header_len && parse_header(header, out, &fortran_order) == 0;
    free(header);
    if (ok) {
        out->data = malloc(out->n_elems * out->elem_size + 1);
        ok = out->data && fread(out->data, out->elem_size, out->n_elems, f) == out->n_elems;
    }
    fclose(f);
    if (ok && fortran_order) ok = to_c_order(out) == 0;
    if (!ok) {
        fprintf(stderr, "npy: cannot read %s\n", path);
        npy_free(out);
        return -1;
    }
    return 0;
}

void npy_free(npy_array *a)
{
    free(a->data);
    a->data = NULL;
}
