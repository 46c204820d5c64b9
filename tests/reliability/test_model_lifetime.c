/* The weights are shared by a context and its forks and unmapped only when the last of them is
 * freed, whatever the order: for every order of freeing a loaded context, a fork of it and a fork of the fork, the
 * model file stays mapped (seen in /proc/self/maps) and the remaining contexts keep reading the
 * weights (token embeddings) until the last one goes, and then the mapping is gone. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "r2gen.h"

#define N_CTX 3

/* 1 when `path` appears in this process's memory map. */
static int is_mapped(const char *path)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return -1;
    char line[PATH_MAX + 128];
    int found = 0;
    size_t len = strlen(path);
    while (!found && fgets(line, sizeof line, maps)) {
        line[strcspn(line, "\n")] = '\0';
        size_t n = strlen(line);
        found = n >= len && strcmp(line + n - len, path) == 0;
    }
    fclose(maps);
    return found;
}

/* The first embedding value of token 1, read from the mapped weights. */
static float first_embedding(const r2gen_ctx *ctx, float *row)
{
    int32_t id = 1;
    if (r2gen_get_token_embeddings(ctx, &id, 1, row, (size_t)r2gen_n_embd(ctx)) != R2GEN_OK)
        return -1e30f;
    return row[0];
}

/* The next permutation of order[0..n) in lexicographic order; 0 after the last. */
static int next_permutation(int *order, int n)
{
    int i = n - 2;
    while (i >= 0 && order[i] >= order[i + 1]) i--;
    if (i < 0) return 0;
    int j = n - 1;
    while (order[j] <= order[i]) j--;
    int t = order[i];
    order[i] = order[j];
    order[j] = t;
    for (int a = i + 1, b = n - 1; a < b; a++, b--) {
        t = order[a];
        order[a] = order[b];
        order[b] = t;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    char path[PATH_MAX];
    if (!realpath(argv[1], path)) return 2;
    r2gen_load_params params = r2gen_load_params_default();
    params.n_threads = 1;
    int order[N_CTX] = {0, 1, 2};
    float *row = NULL;
    float expected = 0;
    int n_orders = 0;
    do {
        r2gen_ctx *ctx[N_CTX] = {NULL};
        CHECK(r2gen_load(path, &params, &ctx[0]) == R2GEN_OK, "load: %s", r2gen_last_error(NULL));
        if (!ctx[0]) break;
        for (int i = 1; i < N_CTX; i++)
            CHECK(r2gen_ctx_fork(ctx[i - 1], &ctx[i]) == R2GEN_OK, "fork %d", i);
        if (!row) {
            row = malloc((size_t)r2gen_n_embd(ctx[0]) * sizeof *row);
            if (!row) return 1;
            expected = first_embedding(ctx[0], row);
        }
        for (int k = 0; k < N_CTX; k++) {
            r2gen_free(ctx[order[k]]);
            ctx[order[k]] = NULL;
            int last = k == N_CTX - 1;
            CHECK(is_mapped(path) == !last, "order %d%d%d: after %d frees the model is %smapped",
                  order[0], order[1], order[2], k + 1, last ? "still " : "not ");
            for (int i = 0; i < N_CTX; i++)
                if (ctx[i])
                    CHECK(first_embedding(ctx[i], row) == expected,
                          "order %d%d%d: context %d reads other weights after %d frees",
                          order[0], order[1], order[2], i, k + 1);
        }
        n_orders++;
    } while (next_permutation(order, N_CTX));
    free(row);
    printf("%d orders of freeing a context, its fork and the fork's fork\n", n_orders);
    return check_summary();
}
