/* The limits that protect a host from hostile files are checked before memory is committed:
 * - GGUF: more tensors or metadata pairs than the limits, a string or array longer than the limits,
 *   counts that the file's bytes cannot hold, and a real model whose tensor declares more data than
 *   the file has, are all refused with R2GEN_ERR_MODEL_FORMAT while no allocation larger than
 *   SMALL_ALLOCATION is ever requested;
 * - images: PNG, JPEG, BMP and PGM headers declaring a side over R2GEN_IMAGE_MAX_SIDE or more
 *   pixels than R2GEN_IMAGE_MAX_PIXELS, and raw pixels of such sizes, are refused the same way.
 * The library's allocations are observed through alloc_hooks (largest request). */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_hooks.h"
#include "check.h"
#include "core/gguf.h"
#include "r2gen.h"
#include "test_paths.h"

#define SMALL_ALLOCATION ((size_t)1 << 20)
#define LIMIT_TENSORS 65536
#define LIMIT_KV 65536
#define LIMIT_STRING ((uint64_t)1 << 24)
#define LIMIT_ARRAY ((uint64_t)1 << 24)

typedef struct bytes {
    uint8_t *data;
    size_t size, capacity;
} bytes;

static void put(bytes *b, const void *data, size_t n)
{
    if (b->size + n > b->capacity) {
        b->capacity = (b->size + n) * 2;
        b->data = realloc(b->data, b->capacity);
        if (!b->data) abort(); /* the test's own buffer */
    }
    memcpy(b->data + b->size, data, n);
    b->size += n;
}

static void put_u32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(bytes *b, uint64_t v) { put(b, &v, 8); }

static bytes gguf_header(uint64_t n_tensors, uint64_t n_kv)
{
    bytes b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, n_tensors);
    put_u64(&b, n_kv);
    return b;
}

/* gguf_open_memory must refuse with a message containing `expect`, allocating little. */
static void expect_gguf_refused(const char *what, const bytes *b, const char *expect)
{
    gguf_file *f = NULL;
    error err = {0};
    alloc_hooks_reset(0);
    r2gen_status status = gguf_open_memory(b->data, b->size, &f, &err);
    size_t largest = alloc_hooks_largest();
    CHECK(status == R2GEN_ERR_MODEL_FORMAT && f == NULL && strstr(err.message, expect),
          "%s: status %d, message '%s' (expected '%s')", what, status, err.message, expect);
    CHECK(largest <= SMALL_ALLOCATION, "%s: an allocation of %zu bytes", what, largest);
    CHECK(alloc_hooks_live() == 0, "%s: %ld blocks leak", what, alloc_hooks_live());
    gguf_close(f);
}

/* A header with one metadata pair `key` of value type `type`; the value is appended by the caller. */
static bytes one_pair(const char *key, uint32_t type)
{
    bytes b = gguf_header(0, 1);
    put_u64(&b, strlen(key));
    put(&b, key, strlen(key));
    put_u32(&b, type);
    return b;
}

static void test_gguf_limits(void)
{
    static const struct {
        const char *what;
        uint64_t n_tensors, n_kv;
        const char *expect;
    } counts[] = {
        {"tensor count over the limit", LIMIT_TENSORS + 1, 0, "exceeds the limit"},
        {"metadata count over the limit", 0, LIMIT_KV + 1, "exceeds the limit"},
        /* within the limits, but the file cannot hold them */
        {"tensor count over the file", LIMIT_TENSORS, 0, "exceeds the file"},
        {"metadata count over the file", 0, 1000, "exceeds the file"},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        bytes b = gguf_header(counts[i].n_tensors, counts[i].n_kv);
        expect_gguf_refused(counts[i].what, &b, counts[i].expect);
        free(b.data);
    }

    /* A string value and a u8 array one byte over their limits, with all their bytes present. */
    uint8_t *zeros = calloc(1, LIMIT_STRING + 1);
    if (!zeros) return;
    bytes b = one_pair("text", GGUF_STRING);
    put_u64(&b, LIMIT_STRING + 1);
    put(&b, zeros, LIMIT_STRING + 1);
    expect_gguf_refused("string over the limit", &b, "malformed");
    free(b.data);

    b = one_pair("list", GGUF_ARRAY);
    put_u32(&b, GGUF_U8);
    put_u64(&b, LIMIT_ARRAY + 1);
    put(&b, zeros, LIMIT_ARRAY + 1);
    expect_gguf_refused("array over the limit", &b, "malformed");
    free(b.data);
    free(zeros);
}

static bytes read_file(const char *path)
{
    bytes b = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return b;
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) put(&b, chunk, n);
    fclose(f);
    return b;
}

static int write_file(const char *path, const bytes *b)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(b->data, 1, b->size, f) == b->size;
    return fclose(f) == 0 && ok;
}

/* The model with one tensor's second dimension raised so that its data runs past the end. */
static void test_model_larger_than_file(const char *model_path)
{
    bytes model = read_file(model_path);
    CHECK(model.size > 0, "cannot read %s", model_path);
    if (!model.size) return;
    static const char name[] = "token_embd.weight";
    uint8_t pattern[8 + sizeof name - 1];
    uint64_t len = sizeof name - 1;
    memcpy(pattern, &len, 8);
    memcpy(pattern + 8, name, len);
    uint8_t *at = memmem(model.data, model.size, pattern, sizeof pattern);
    CHECK(at != NULL, "no %s in the model", name);
    if (!at) return;
    uint64_t huge_rows = (uint64_t)1 << 40; /* ne[1]: 2^40 rows of embeddings */
    memcpy(at + sizeof pattern + 4 + 8, &huge_rows, 8);
    char path[512];
    scratch_path(path, sizeof path, "larger_than_file.gguf");
    CHECK(write_file(path, &model), "cannot write %s", path);
    r2gen_ctx *ctx = NULL;
    alloc_hooks_reset(0);
    r2gen_status status = r2gen_load(path, NULL, &ctx);
    CHECK(status == R2GEN_ERR_MODEL_FORMAT && !ctx && strstr(r2gen_last_error(NULL), name),
          "status %d: %s", status, r2gen_last_error(NULL));
    CHECK(alloc_hooks_largest() <= SMALL_ALLOCATION, "an allocation of %zu bytes",
          alloc_hooks_largest());
    CHECK(alloc_hooks_live() == 0, "%ld blocks leak", alloc_hooks_live());
    remove(path);
    free(model.data);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }

static void expect_image_refused(r2gen_ctx *ctx, const char *what, const bytes *b)
{
    alloc_hooks_reset(0);
    r2gen_status status = r2gen_encode_image_memory(ctx, b->data, b->size);
    CHECK(status == R2GEN_ERR_IMAGE && strstr(r2gen_last_error(ctx), "limit"), "%s: %d %s", what,
          status, r2gen_last_error(ctx));
    CHECK(alloc_hooks_largest() <= SMALL_ALLOCATION, "%s: an allocation of %zu bytes", what,
          alloc_hooks_largest());
    CHECK(alloc_hooks_live() == 0, "%s: %ld blocks leak", what, alloc_hooks_live());
}

/* Each fixture image with its declared size replaced by each oversized size. */
static void test_image_limits(r2gen_ctx *ctx)
{
    static const uint32_t sizes[][2] = {
        {R2GEN_IMAGE_MAX_SIDE + 1, 1},
        {1, R2GEN_IMAGE_MAX_SIDE + 1},
        {8193, 8193}, /* each side allowed, over the pixel budget */
    };
    char path[512];
    bytes png = read_file(test_data_path(path, sizeof path, "r2gen-tiny/images/frontal_gray8.png"));
    bytes jpeg = read_file(test_data_path(path, sizeof path, "r2gen-tiny/images/lateral_gray8.jpg"));
    uint8_t *sof = jpeg.data ? memmem(jpeg.data, jpeg.size, "\xff\xc0", 2) : NULL;
    CHECK(png.size > 24 && sof, "fixture images");
    if (png.size <= 24 || !sof) return;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint32_t w = sizes[i][0], h = sizes[i][1];
        char what[64];
        put_be32(png.data + 16, w);
        put_be32(png.data + 20, h);
        snprintf(what, sizeof what, "PNG %ux%u", w, h);
        expect_image_refused(ctx, what, &png);
        if (w <= 65535 && h <= 65535) { /* JPEG sizes are 16-bit */
            put_be16(sof + 5, (uint16_t)h);
            put_be16(sof + 7, (uint16_t)w);
            snprintf(what, sizeof what, "JPEG %ux%u", w, h);
            expect_image_refused(ctx, what, &jpeg);
        }
        bytes pgm = {0};
        char header[64];
        int n = snprintf(header, sizeof header, "P5\n%u %u\n255\n", w, h);
        put(&pgm, header, (size_t)n);
        put(&pgm, "\0\0\0\0", 4);
        snprintf(what, sizeof what, "PGM %ux%u", w, h);
        expect_image_refused(ctx, what, &pgm);
        free(pgm.data);

        uint8_t bmp[58] = {'B', 'M'};
        uint32_t fields[] = {sizeof bmp, 0, 54, 40, w, h};
        memcpy(bmp + 2, fields, sizeof fields); /* size, reserved, offset, header size, w, h */
        bmp[26] = 1;  /* planes */
        bmp[28] = 24; /* bits per pixel */
        bytes bmp_bytes = {bmp, sizeof bmp, sizeof bmp};
        snprintf(what, sizeof what, "BMP %ux%u", w, h);
        expect_image_refused(ctx, what, &bmp_bytes);

        uint8_t pixel = 0;
        r2gen_image raw = r2gen_image_default();
        raw.format = R2GEN_PIXEL_GRAY8;
        raw.width = (int)w;
        raw.height = (int)h;
        raw.pixels = &pixel;
        alloc_hooks_reset(0);
        CHECK(r2gen_encode_image(ctx, &raw) == R2GEN_ERR_INVALID_ARGUMENT, "raw %ux%u", w, h);
        CHECK(alloc_hooks_largest() <= SMALL_ALLOCATION, "raw %ux%u: an allocation of %zu bytes",
              w, h, alloc_hooks_largest());
    }
    CHECK(r2gen_n_views(ctx) == 0, "a refused image was added");
    free(png.data);
    free(jpeg.data);
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    test_gguf_limits();
    test_model_larger_than_file(argv[1]);
    r2gen_load_params params = r2gen_load_params_default();
    params.n_threads = 1;
    r2gen_ctx *ctx = NULL;
    CHECK(r2gen_load(argv[1], &params, &ctx) == R2GEN_OK, "%s", r2gen_last_error(NULL));
    if (ctx) test_image_limits(ctx);
    r2gen_free(ctx);
    return check_summary();
}
