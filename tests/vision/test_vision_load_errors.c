/* swin_load / projector_load on damaged copies of a good file: a missing tensor, a wrong shape,
 * a wrong type, a missing key and a geometry that needs padding must each fail with the right
 * status and a message naming what is wrong. The copies are made by patching the GGUF header in
 * memory (same-length renames, changed dimensions and type ids), then opened with
 * gguf_open_memory. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vision/projector.h"
#include "vision/swin.h"

typedef struct buffer {
    uint8_t *data;
    size_t size;
} buffer;

static int read_file(const char *path, buffer *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    out->size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    out->data = malloc(out->size);
    int ok = out->data && fread(out->data, 1, out->size, f) == out->size;
    fclose(f);
    return ok;
}

/* Offset just past the GGUF string `text` (u64 length + bytes) in the header, or 0. */
static size_t find_gguf_string(const buffer *b, const char *text)
{
    uint64_t len = strlen(text);
    for (size_t i = 8; i + len <= b->size; i++)
        if (!memcmp(b->data + i, text, len) && !memcmp(b->data + i - 8, &len, 8)) return i + len;
    return 0;
}

typedef enum patch_kind { RENAME, SET_DIM1, SET_TYPE, SET_U32 } patch_kind;

typedef struct damage {
    const char *what;
    patch_kind kind;
    const char *name;  /* tensor or key to patch */
    uint64_t value;    /* new last character (RENAME), ne[1], type id or u32 value */
    int for_projector; /* checked through projector_load instead of swin_load */
    r2gen_status expected;
} damage;

/* Tensor info after the name: u32 n_dims, u64 ne[n_dims], u32 type. A key is followed by u32
 * value type and the value. */
static int apply(buffer *b, const damage *d)
{
    size_t at = find_gguf_string(b, d->name);
    if (!at) return 0;
    uint32_t n_dims;
    memcpy(&n_dims, b->data + at, 4);
    switch (d->kind) {
    case RENAME: b->data[at - 1] = (uint8_t)d->value; break;
    case SET_DIM1: memcpy(b->data + at + 4 + 8, &d->value, 8); break;
    case SET_TYPE: {
        uint32_t type = (uint32_t)d->value;
        memcpy(b->data + at + 4 + 8 * n_dims, &type, 4);
        break;
    }
    case SET_U32: {
        uint32_t value = (uint32_t)d->value;
        memcpy(b->data + at + 4, &value, 4);
        break;
    }
    }
    return 1;
}

static r2gen_status load(const buffer *b, int for_projector, error *err)
{
    gguf_file *f = NULL;
    r2gen_status status = gguf_open_memory(b->data, b->size, &f, err);
    if (status != R2GEN_OK) return status;
    if (for_projector) {
        projector p;
        status = projector_load(f, &p, err);
    } else {
        swin_model m;
        status = swin_load(f, &m, err);
        if (status == R2GEN_OK) swin_free(&m);
    }
    gguf_close(f);
    return status;
}

static const damage cases[] = {
    {"missing tensor", RENAME, "r2gen.vision.layers.2.blocks.1.attn_v.weight", 'x', 0,
     R2GEN_ERR_MODEL_FORMAT},
    {"wrong shape", SET_DIM1, "r2gen.vision.layers.1.blocks.0.ffn_up.weight", 255, 0,
     R2GEN_ERR_MODEL_FORMAT},
    {"norm not f32", SET_TYPE, "r2gen.vision.layers.0.blocks.1.norm2.weight", TENSOR_F16, 0,
     R2GEN_ERR_MODEL_FORMAT},
    {"bias table not f32", SET_TYPE, "r2gen.vision.layers.3.blocks.0.rel_pos_bias", TENSOR_BF16,
     0, R2GEN_ERR_MODEL_FORMAT},
    {"missing merge", RENAME, "r2gen.vision.layers.2.merge.reduction.weight", 'x', 0,
     R2GEN_ERR_MODEL_FORMAT},
    {"missing final norm", RENAME, "r2gen.vision.norm.bias", 'x', 0, R2GEN_ERR_MODEL_FORMAT},
    {"missing key", RENAME, "r2gen.vision.window_size", 'x', 0, R2GEN_ERR_MODEL_FORMAT},
    {"padding geometry", SET_U32, "r2gen.vision.image_size", 192, 0, R2GEN_ERR_UNSUPPORTED},
    {"projector bias missing", RENAME, "r2gen.proj.norm.bias", 'x', 1, R2GEN_ERR_MODEL_FORMAT},
    {"projector wrong shape", SET_DIM1, "r2gen.proj.weight", 63, 1, R2GEN_ERR_MODEL_FORMAT},
};

int main(int argc, char **argv)
{
    const char *model = argc > 1 ? argv[1] : "r2gen-tiny-shallow-f32.gguf";
    buffer good = {NULL, 0};
    CHECK(read_file(model, &good), "cannot read %s", model);
    if (check_failed) return check_summary();
    error err = {0};
    CHECK(load(&good, 0, &err) == R2GEN_OK, "undamaged swin: %s", err.message);
    CHECK(load(&good, 1, &err) == R2GEN_OK, "undamaged projector: %s", err.message);

    buffer copy = {malloc(good.size), good.size};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const damage *d = &cases[i];
        memcpy(copy.data, good.data, good.size);
        CHECK(apply(&copy, d), "%s: %s not found in %s", d->what, d->name, model);
        error_clear(&err);
        r2gen_status status = load(&copy, d->for_projector, &err);
        printf("%-24s -> %d: %s\n", d->what, (int)status, err.message);
        CHECK(status == d->expected, "%s: status %d, expected %d", d->what, (int)status,
              (int)d->expected);
        /* The geometry case names the stage, every other one the damaged tensor or key. */
        if (d->kind != SET_U32)
            CHECK(strstr(err.message, d->name) != NULL, "%s: message does not name %s", d->what,
                  d->name);
    }
    free(copy.data);
    free(good.data);
    return check_summary();
}
