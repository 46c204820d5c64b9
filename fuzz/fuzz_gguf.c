/* r2gen_load on arbitrary bytes. The input becomes an in-memory file (memfd) that is loaded by
 * its /proc path, so the whole path runs: mmap, the GGUF reader, and every stage's loader
 * (Swin, projector, LLaMA, tokenizer) on whatever metadata and tensor table the bytes hold.
 * A model that loads is then used a little (tokenise, embed, two greedy tokens, one small view),
 * which reaches the code that trusts the validated shapes. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"

static int write_all(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n <= 0) return 0;
        data += n;
        size -= (size_t)n;
    }
    return 1;
}

static void exercise(r2gen_ctx *ctx)
{
    int32_t ids[64];
    size_t n_ids = 0;
    r2gen_status status = r2gen_tokenize(ctx, "No acute disease. <s>\xe2\x96\x81x", ids, 64, &n_ids);
    FUZZ_ASSERT(status == R2GEN_OK || status == R2GEN_ERR_BUFFER_TOO_SMALL ||
                status == R2GEN_ERR_OUT_OF_MEMORY);

    size_t n_embd = (size_t)r2gen_n_embd(ctx);
    float *embedding = malloc(n_embd * sizeof *embedding);
    int32_t bos = 1;
    char *report = NULL;
    r2gen_generate_params p = r2gen_generate_params_default();
    p.num_beams = 1;
    p.min_new_tokens = 0;
    p.max_new_tokens = 2;
    if (embedding && r2gen_n_vocab(ctx) > bos &&
        r2gen_get_token_embeddings(ctx, &bos, 1, embedding, n_embd) == R2GEN_OK)
        fuzz_check_failure(ctx, r2gen_generate_from_embeddings(ctx, embedding, 1, &p, &report));
    r2gen_string_free(report);
    free(embedding);

    uint8_t grey[8 * 8];
    memset(grey, 128, sizeof grey);
    r2gen_image image = r2gen_image_default();
    image.format = R2GEN_PIXEL_GRAY8;
    image.width = image.height = 8;
    image.pixels = grey;
    status = r2gen_encode_image(ctx, &image);
    FUZZ_ASSERT(status != R2GEN_ERR_INVALID_ARGUMENT);
    fuzz_check_failure(ctx, status);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.gguf", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (write_all(fd, data, size)) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        r2gen_load_params params = r2gen_load_params_default();
        params.n_threads = 1;
        r2gen_ctx *ctx = NULL;
        r2gen_status status = r2gen_load(path, &params, &ctx);
        FUZZ_ASSERT((status == R2GEN_OK) == (ctx != NULL));
        FUZZ_ASSERT(status != R2GEN_ERR_INVALID_ARGUMENT);
        fuzz_check_failure(NULL, status);
        if (ctx) exercise(ctx);
        r2gen_free(ctx);
    }
    close(fd);
    return 0;
}
