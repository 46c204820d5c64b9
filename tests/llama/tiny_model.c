#include "tiny_model.h"

#include <stdio.h>
#include <stdlib.h>

#include "npy.h"
#include "test_paths.h"

int tiny_open(const char *type, tiny_model *out)
{
    char path[256];
    error err = {0};
    snprintf(path, sizeof path, "llama-tiny-%s.gguf", type);
    out->file = NULL;
    out->model = NULL;
    if (gguf_open(path, &out->file, &err) != R2GEN_OK ||
        llama_load(out->file, 1, &out->model, &err) != R2GEN_OK) {
        fprintf(stderr, "%s: %s\n", path, err.message);
        tiny_close(out);
        return -1;
    }
    return 0;
}

void tiny_close(tiny_model *t)
{
    llama_free(t->model);
    if (t->file) gguf_close(t->file);
    t->model = NULL;
    t->file = NULL;
}

float *tiny_fixture(const char *name, size_t n_elems)
{
    char relative[128], path[512];
    npy_array a;
    snprintf(relative, sizeof relative, "llama-tiny/%s", name);
    if (npy_load(test_data_path(path, sizeof path, relative), &a) != 0) return NULL;
    if (a.n_elems != n_elems || a.elem_size != sizeof(float)) {
        fprintf(stderr, "%s: %zu values, expected %zu float32\n", path, a.n_elems, n_elems);
        npy_free(&a);
        return NULL;
    }
    return a.data;
}

compute tiny_cpu(void)
{
    compute cpu = {.n_threads = 2, .backend = GEMM_ONEDNN, .allow_bf16 = 0};
    return cpu;
}

int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}
