/* llama_load on damaged copies of the f32 llama-tiny conversion: each fails with
 * R2GEN_ERR_MODEL_FORMAT and names what is wrong. The file is patched in memory (same length, so
 * the GGUF stays well-formed and only the model-level check can catch it). */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tiny_model.h"

typedef struct file_bytes {
    unsigned char *data;
    size_t size;
} file_bytes;

static int read_file(const char *path, file_bytes *out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    fseek(fp, 0, SEEK_END);
    out->size = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    out->data = malloc(out->size);
    size_t got = out->data ? fread(out->data, 1, out->size, fp) : 0;
    fclose(fp);
    return got == out->size ? 0 : -1;
}

/* A GGUF string as stored: u64 length then the bytes. Returns the offset just past it. */
static size_t find_gguf_string(const file_bytes *f, const char *s)
{
    size_t n = strlen(s);
    unsigned char pattern[128];
    uint64_t len = n;
    memcpy(pattern, &len, 8);
    memcpy(pattern + 8, s, n);
    unsigned char *at = memmem(f->data, f->size, pattern, 8 + n);
    return at ? (size_t)(at - f->data) + 8 + n : 0;
}

/* Loads the patched copy and checks the failure names `expect`. */
static void expect_failure(const file_bytes *patched, const char *what, r2gen_status want,
                           const char *expect)
{
    gguf_file *gf = NULL;
    llama_model *m = NULL;
    error err = {0};
    r2gen_status st = gguf_open_memory(patched->data, patched->size, &gf, &err);
    CHECK(st == R2GEN_OK, "%s: the GGUF itself should stay valid: %s", what, err.message);
    if (st != R2GEN_OK) return;
    st = llama_load(gf, 1, &m, &err);
    printf("%s: %s\n", what, err.message);
    CHECK(st == want && !m, "%s: status %d, expected %d", what, (int)st, (int)want);
    CHECK(strstr(err.message, expect) != NULL, "%s: message '%s' does not name '%s'", what,
          err.message, expect);
    llama_free(m);
    gguf_close(gf);
}

/* Copy of the file with `find` (a GGUF string) replaced by `replace` of the same length. */
static void rename_string(const file_bytes *f, file_bytes *copy, const char *find, const char *replace)
{
    size_t end = find_gguf_string(f, find);
    memcpy(copy->data, f->data, f->size);
    CHECK(end != 0 && strlen(find) == strlen(replace), "'%s' not found", find);
    if (end) memcpy(copy->data + end - strlen(find), replace, strlen(replace));
}

int main(void)
{
    file_bytes f, copy;
    if (read_file("llama-tiny-f32.gguf", &f) != 0) {
        fprintf(stderr, "cannot read llama-tiny-f32.gguf\n");
        return 1;
    }
    copy.size = f.size;
    copy.data = malloc(f.size);

    memcpy(copy.data, f.data, f.size);
    gguf_file *gf = NULL;
    llama_model *m = NULL;
    error err = {0};
    CHECK(gguf_open_memory(copy.data, copy.size, &gf, &err) == R2GEN_OK &&
              llama_load(gf, 1, &m, &err) == R2GEN_OK,
          "the unpatched file: %s", err.message);
    llama_free(m);
    if (gf) gguf_close(gf);

    rename_string(&f, &copy, "blk.1.ffn_up.weight", "blk.1.ffn_uq.weight");
    expect_failure(&copy, "missing tensor", R2GEN_ERR_MODEL_FORMAT, "blk.1.ffn_up.weight");
    rename_string(&f, &copy, "output_norm.weight", "output_nxrm.weight");
    expect_failure(&copy, "missing norm", R2GEN_ERR_MODEL_FORMAT, "output_norm.weight");
    rename_string(&f, &copy, "llama.block_count", "llama.block_cxunt");
    expect_failure(&copy, "missing key", R2GEN_ERR_MODEL_FORMAT, "llama.block_count");
    rename_string(&f, &copy, "llama.attention.layer_norm_rms_epsilon",
                  "llama.attention.layer_norm_rms_epsiloX");
    expect_failure(&copy, "missing epsilon", R2GEN_ERR_MODEL_FORMAT, "layer_norm_rms_epsilon");

    /* Tensor info after the name: u32 n_dims, then ne[0], ne[1] as u64. Halving ne[1] keeps the
     * data inside the file. */
    memcpy(copy.data, f.data, f.size);
    size_t info = find_gguf_string(&f, "blk.0.attn_k.weight");
    CHECK(info != 0, "blk.0.attn_k.weight not found");
    if (info) {
        uint64_t ne1;
        memcpy(&ne1, copy.data + info + 4 + 8, 8);
        ne1 /= 2;
        memcpy(copy.data + info + 4 + 8, &ne1, 8);
        expect_failure(&copy, "wrong shape", R2GEN_ERR_MODEL_FORMAT, "blk.0.attn_k.weight");
    }

    /* general.architecture's value: key, u32 type 8 (string), then the string. */
    memcpy(copy.data, f.data, f.size);
    size_t arch = find_gguf_string(&f, "general.architecture");
    CHECK(arch != 0, "general.architecture not found");
    if (arch) {
        memcpy(copy.data + arch + 4 + 8, "r2gen", 5);
        expect_failure(&copy, "other architecture", R2GEN_ERR_MODEL_FORMAT, "general.architecture");
    }

    free(copy.data);
    free(f.data);
    return check_summary();
}
