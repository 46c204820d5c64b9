#include "gguf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reader trusts nothing in the file: every count, length and offset is checked against the
 * bytes that remain before anything is allocated or dereferenced, with overflow-safe arithmetic.
 * The smallest possible encodings bound the counts: a metadata pair takes at least 13 bytes
 * (key length, value type, one value byte) and a tensor description at least 28. */
#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NAME 256
#define GGUF_MAX_ARRAY_DEPTH 8
#define GGUF_MIN_KV_BYTES 13
#define GGUF_MIN_TENSOR_INFO_BYTES 28
/* Limits far above any real model (Llama-2-7B: 291 tensors, ~25 keys, 32000-entry vocabulary
 * arrays, strings of a few KiB) that bound what a hostile header can make the loaders allocate
 * and walk, independently of the file size. */
#define GGUF_MAX_TENSORS 65536
#define GGUF_MAX_KV 65536
#define GGUF_MAX_ARRAY_COUNT ((uint64_t)1 << 24)
#define GGUF_MAX_STRING ((uint64_t)1 << 24)

typedef struct gguf_kv {
    gguf_string key;
    gguf_value value;
} gguf_kv;

typedef struct name_entry {
    const char *name;
    size_t index;
} name_entry;

struct gguf_file {
    const uint8_t *base;
    size_t size;
    int mapped; /* 1: base is our mmap and is unmapped on close */
    char *path;
    uint32_t version;
    size_t n_kv;
    gguf_kv *kv;
    size_t n_tensors;
    tensor *tensors;
    name_entry *by_name; /* the tensors sorted by name, for bsearch */
    char *names;     /* NUL-terminated copies of the tensor names */
};

typedef struct cursor {
    const uint8_t *pos;
    const uint8_t *end;
} cursor;

static size_t remaining(const cursor *c) { return (size_t)(c->end - c->pos); }

static int read_bytes(cursor *c, void *out, size_t n)
{
    if (remaining(c) < n) return 0;
    memcpy(out, c->pos, n);
    c->pos += n;
    return 1;
}

static int read_u32(cursor *c, uint32_t *out) { return read_bytes(c, out, sizeof *out); }
static int read_u64(cursor *c, uint64_t *out) { return read_bytes(c, out, sizeof *out); }

static int read_string(cursor *c, gguf_string *out)
{
    uint64_t len;
    if (!read_u64(c, &len) || len > remaining(c) || len > GGUF_MAX_STRING) return 0;
    out->data = (const char *)c->pos;
    out->len = len;
    c->pos += len;
    return 1;
}

static size_t scalar_size(gguf_value_type type)
{
    switch (type) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

static int64_t sign_extend(uint64_t raw, size_t size)
{
    unsigned shift = (unsigned)(64 - 8 * size);
    return (int64_t)(raw << shift) >> shift;
}

/* Decode one little-endian scalar of `type` into value->as. */
static void decode_scalar(const uint8_t *src, gguf_value_type type, gguf_value *value)
{
    size_t size = scalar_size(type);
    uint64_t raw = 0;
    memcpy(&raw, src, size);
    value->type = type;
    switch (type) {
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64:
        value->as.i64 = sign_extend(raw, size);
        break;
    case GGUF_F32: {
        float f;
        memcpy(&f, src, sizeof f);
        value->as.f64 = f;
        break;
    }
    case GGUF_F64: memcpy(&value->as.f64, src, sizeof(double)); break;
    case GGUF_BOOL: value->as.boolean = raw != 0; break;
    default: value->as.u64 = raw; break;
    }
}

static int skip_value(cursor *c, gguf_value_type type, int depth);

/* Walk the elements of an array so that its extent is known and every nested string and array
 * is in bounds; fixed-size elements are checked with one multiplication. */
static int skip_array_elems(cursor *c, gguf_value_type elem_type, uint64_t count, int depth)
{
    if (count > GGUF_MAX_ARRAY_COUNT) return 0;
    size_t size = scalar_size(elem_type);
    if (size) {
        if (count > remaining(c) / size) return 0;
        c->pos += count * size;
        return 1;
    }
    if (elem_type != GGUF_STRING && elem_type != GGUF_ARRAY) return 0;
    if (count > remaining(c) / 8) return 0; /* every string or array needs at least 8 bytes */
    for (uint64_t i = 0; i < count; i++)
        if (!skip_value(c, elem_type, depth + 1)) return 0;
    return 1;
}

static int skip_value(cursor *c, gguf_value_type type, int depth)
{
    if (depth > GGUF_MAX_ARRAY_DEPTH) return 0;
    if (type == GGUF_STRING) {
        gguf_string s;
        return read_string(c, &s);
    }
    if (type == GGUF_ARRAY) {
        uint32_t elem_type;
        uint64_t count;
        return read_u32(c, &elem_type) && read_u64(c, &count) &&
               skip_array_elems(c, (gguf_value_type)elem_type, count, depth);
    }
    size_t size = scalar_size(type);
    if (!size || remaining(c) < size) return 0;
    c->pos += size;
    return 1;
}

static int read_value(cursor *c, gguf_value_type type, gguf_value *value)
{
    memset(value, 0, sizeof *value);
    value->type = type;
    if (type == GGUF_STRING) return read_string(c, &value->as.str);
    if (type == GGUF_ARRAY) {
        uint32_t elem_type;
        if (!read_u32(c, &elem_type) || !read_u64(c, &value->count)) return 0;
        value->elem_type = (gguf_value_type)elem_type;
        value->elems = c->pos;
        if (!skip_array_elems(c, value->elem_type, value->count, 0)) return 0;
        value->elems_end = c->pos;
        return 1;
    }
    size_t size = scalar_size(type);
    if (!size || remaining(c) < size) return 0;
    decode_scalar(c->pos, type, value);
    c->pos += size;
    return 1;
}

static int string_equals(gguf_string s, const char *text, size_t len)
{
    return s.len == len && memcmp(s.data, text, len) == 0;
}

const gguf_value *gguf_find(const gguf_file *file, const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < file->n_kv; i++)
        if (string_equals(file->kv[i].key, key, len)) return &file->kv[i].value;
    return NULL;
}

static r2gen_status read_metadata(gguf_file *file, cursor *c, uint64_t n_kv, error *err)
{
    if (n_kv > GGUF_MAX_KV)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata count %llu exceeds the limit of %d",
                         (unsigned long long)n_kv, GGUF_MAX_KV);
    if (n_kv > remaining(c) / GGUF_MIN_KV_BYTES)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata count %llu exceeds the file",
                         (unsigned long long)n_kv);
    file->kv = calloc(n_kv ? n_kv : 1, sizeof *file->kv);
    if (!file->kv) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory (metadata)");
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &file->kv[i];
        uint32_t type;
        if (!read_string(c, &kv->key) || !read_u32(c, &type) ||
            !read_value(c, (gguf_value_type)type, &kv->value))
            return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                             "metadata entry %llu is truncated or malformed",
                             (unsigned long long)i);
        for (uint64_t j = 0; j < i; j++)
            if (file->kv[j].key.len == kv->key.len &&
                !memcmp(file->kv[j].key.data, kv->key.data, kv->key.len))
                return error_set(err, R2GEN_ERR_MODEL_FORMAT, "duplicate metadata key '%.*s'",
                                 (int)(kv->key.len > 64 ? 64 : kv->key.len), kv->key.data);
        file->n_kv = (size_t)i + 1;
    }
    return R2GEN_OK;
}

/* Element count of a shape, or -1 on overflow. */
static int64_t checked_elems(const int64_t *ne, int n_dims)
{
    int64_t n = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || n > INT64_MAX / ne[d]) return -1;
        n *= ne[d];
    }
    return n;
}

static r2gen_status read_tensor_info(cursor *c, tensor *t, gguf_string *name, uint64_t *offset,
                                     size_t index, error *err)
{
    uint32_t n_dims, type;
    if (!read_string(c, name) || !read_u32(c, &n_dims))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor %zu: truncated description", index);
    if (name->len == 0 || name->len >= GGUF_MAX_NAME)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor %zu: name length %llu", index,
                         (unsigned long long)name->len);
    if (n_dims == 0 || n_dims > TENSOR_MAX_DIMS)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor '%.*s': %u dimensions",
                         (int)name->len, name->data, n_dims);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < TENSOR_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t dim;
        if (!read_u64(c, &dim))
            return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor '%.*s': truncated shape",
                             (int)name->len, name->data);
        if (dim == 0 || dim > (uint64_t)INT64_MAX)
            return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor '%.*s': dimension %llu",
                             (int)name->len, name->data, (unsigned long long)dim);
        t->ne[d] = (int64_t)dim;
    }
    if (!read_u32(c, &type) || !read_u64(c, offset))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor '%.*s': truncated description",
                         (int)name->len, name->data);
    if (!tensor_type_known(type))
        return error_set(err, R2GEN_ERR_UNSUPPORTED,
                         "tensor '%.*s': type %u (%s) is not supported (this library reads "
                         TENSOR_TYPE_NAMES ")",
                         (int)name->len, name->data, type, tensor_type_name(type));
    t->type = (tensor_type)type;
    int64_t n_elems = checked_elems(t->ne, t->n_dims);
    size_t row_bytes = tensor_row_bytes(t->type, t->ne[0]);
    if (n_elems < 0 || row_bytes == 0)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "tensor '%.*s': shape does not fit type %s or overflows", (int)name->len,
                         name->data, tensor_type_name(type));
    uint64_t n_rows = (uint64_t)(n_elems / t->ne[0]);
    if (n_rows > SIZE_MAX / row_bytes)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor '%.*s': size overflows",
                         (int)name->len, name->data);
    t->n_bytes = (size_t)n_rows * row_bytes;
    return R2GEN_OK;
}

/* Tensor names sorted for bsearch; equal neighbours are duplicates, which the reader rejects. */
static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const name_entry *)a)->name, ((const name_entry *)b)->name);
}

static r2gen_status read_tensors(gguf_file *file, cursor *c, uint64_t n_tensors, uint64_t *offsets,
                                 error *err)
{
    size_t names_bytes = 0;
    gguf_string *names = calloc(n_tensors ? n_tensors : 1, sizeof *names);
    if (!names) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory (tensor names)");
    r2gen_status status = R2GEN_OK;
    for (size_t i = 0; i < n_tensors && status == R2GEN_OK; i++) {
        status = read_tensor_info(c, &file->tensors[i], &names[i], &offsets[i], i, err);
        names_bytes += names[i].len + 1;
    }
    if (status == R2GEN_OK) {
        file->names = malloc(names_bytes ? names_bytes : 1);
        if (!file->names) status = error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (size_t i = 0, at = 0; i < n_tensors && status == R2GEN_OK; i++) {
        memcpy(file->names + at, names[i].data, names[i].len);
        file->names[at + names[i].len] = '\0';
        file->tensors[i].name = file->names + at;
        at += names[i].len + 1;
    }
    free(names);
    return status;
}

static int compare_offsets(const void *a, const void *b)
{
    const tensor *ta = *(const tensor *const *)a, *tb = *(const tensor *const *)b;
    return ta->data < tb->data ? -1 : ta->data > tb->data;
}

/* Place each tensor in the data section and check alignment, bounds and overlaps. */
static r2gen_status place_tensors(gguf_file *file, size_t data_start, uint64_t alignment,
                                  const uint64_t *offsets, error *err)
{
    size_t data_size = file->size - data_start;
    for (size_t i = 0; i < file->n_tensors; i++) {
        tensor *t = &file->tensors[i];
        if (offsets[i] % alignment != 0)
            return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor '%s': offset %llu is not aligned to %llu",
                             t->name, (unsigned long long)offsets[i], (unsigned long long)alignment);
        if (offsets[i] > data_size || t->n_bytes > data_size - offsets[i])
            return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor '%s': data lies past the end of the file",
                             t->name);
        t->data = file->base + data_start + offsets[i];
    }
    const tensor **by_offset = malloc((file->n_tensors ? file->n_tensors : 1) * sizeof *by_offset);
    if (!by_offset) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < file->n_tensors; i++) by_offset[i] = &file->tensors[i];
    qsort(by_offset, file->n_tensors, sizeof *by_offset, compare_offsets);
    r2gen_status status = R2GEN_OK;
    for (size_t i = 1; i < file->n_tensors && status == R2GEN_OK; i++) {
        const tensor *prev = by_offset[i - 1], *next = by_offset[i];
        if ((const uint8_t *)prev->data + prev->n_bytes > (const uint8_t *)next->data)
            status = error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensors '%s' and '%s' overlap",
                               prev->name, next->name);
    }
    free(by_offset);
    return status;
}

static r2gen_status index_names(gguf_file *file, error *err)
{
    file->by_name = malloc((file->n_tensors ? file->n_tensors : 1) * sizeof *file->by_name);
    if (!file->by_name) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < file->n_tensors; i++) {
        file->by_name[i].name = file->tensors[i].name;
        file->by_name[i].index = i;
    }
    qsort(file->by_name, file->n_tensors, sizeof *file->by_name, compare_entries);
    for (size_t i = 1; i < file->n_tensors; i++)
        if (!strcmp(file->by_name[i - 1].name, file->by_name[i].name))
            return error_set(err, R2GEN_ERR_MODEL_FORMAT, "duplicate tensor name '%s'",
                             file->by_name[i].name);
    return R2GEN_OK;
}

static r2gen_status read_alignment(const gguf_file *file, uint64_t *alignment, error *err)
{
    const gguf_value *v = gguf_find(file, "general.alignment");
    *alignment = GGUF_DEFAULT_ALIGNMENT;
    if (!v) return R2GEN_OK;
    if (v->type != GGUF_U32 || v->as.u64 == 0 || (v->as.u64 & (v->as.u64 - 1)) != 0 ||
        v->as.u64 > (1u << 20))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "general.alignment must be a u32 power of two up to 1 MiB");
    *alignment = v->as.u64;
    return R2GEN_OK;
}

static r2gen_status parse(gguf_file *file, error *err)
{
    cursor c = {file->base, file->base + file->size};
    char magic[4];
    uint64_t n_tensors, n_kv;
    if (!read_bytes(&c, magic, 4) || memcmp(magic, GGUF_MAGIC, 4) != 0)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "not a GGUF file (bad magic)");
    if (!read_u32(&c, &file->version) || !read_u64(&c, &n_tensors) || !read_u64(&c, &n_kv))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "truncated GGUF header");
    if (file->version != 2 && file->version != 3)
        return error_set(err, R2GEN_ERR_UNSUPPORTED, "GGUF version %u (2 and 3 are supported)",
                         file->version);
    r2gen_status status = read_metadata(file, &c, n_kv, err);
    if (status != R2GEN_OK) return status;
    if (n_tensors > GGUF_MAX_TENSORS)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor count %llu exceeds the limit of %d",
                         (unsigned long long)n_tensors, GGUF_MAX_TENSORS);
    if (n_tensors > remaining(&c) / GGUF_MIN_TENSOR_INFO_BYTES)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor count %llu exceeds the file",
                         (unsigned long long)n_tensors);
    file->n_tensors = (size_t)n_tensors;
    file->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *file->tensors);
    uint64_t *offsets = calloc(n_tensors ? n_tensors : 1, sizeof *offsets);
    if (!file->tensors || !offsets) {
        free(offsets);
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory (tensors)");
    }
    uint64_t alignment;
    status = read_tensors(file, &c, n_tensors, offsets, err);
    if (status == R2GEN_OK) status = read_alignment(file, &alignment, err);
    if (status == R2GEN_OK) {
        size_t header_end = (size_t)(c.pos - file->base);
        size_t data_start = (header_end + alignment - 1) / alignment * alignment;
        if (n_tensors > 0 && data_start > file->size)
            status = error_set(err, R2GEN_ERR_MODEL_FORMAT, "data section lies past the end");
        else if (n_tensors > 0)
            status = place_tensors(file, data_start, alignment, offsets, err);
    }
    free(offsets);
    return status == R2GEN_OK ? index_names(file, err) : status;
}

static r2gen_status open_parsed(gguf_file *file, gguf_file **out, error *err)
{
    r2gen_status status = parse(file, err);
    if (status != R2GEN_OK) {
        gguf_close(file);
        return status;
    }
    *out = file;
    return R2GEN_OK;
}

r2gen_status gguf_open_memory(const void *data, size_t size, gguf_file **out, error *err)
{
    *out = NULL;
    if (!data && size) return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "NULL buffer");
    gguf_file *file = calloc(1, sizeof *file);
    if (!file) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    file->base = data;
    file->size = size;
    return open_parsed(file, out, err);
}

static r2gen_status map_file(const char *path, gguf_file *file, error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return error_set(err, R2GEN_ERR_IO, "cannot open '%s'", path);
    struct stat st;
    r2gen_status status = R2GEN_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        status = error_set(err, R2GEN_ERR_IO, "'%s' is not a regular file", path);
    else if (st.st_size == 0)
        status = error_set(err, R2GEN_ERR_MODEL_FORMAT, "'%s' is empty", path);
    if (status == R2GEN_OK) {
        void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (base == MAP_FAILED) {
            status = error_set(err, R2GEN_ERR_IO, "cannot map '%s'", path);
        } else {
            file->base = base;
            file->size = (size_t)st.st_size;
            file->mapped = 1;
            /* Weights are read front to back once per decode step: ask for huge pages and
             * read-ahead; both are hints and failures are harmless. */
            madvise(base, file->size, MADV_HUGEPAGE);
            madvise(base, file->size, MADV_WILLNEED);
        }
    }
    close(fd);
    return status;
}

r2gen_status gguf_open(const char *path, gguf_file **out, error *err)
{
    *out = NULL;
    gguf_file *file = calloc(1, sizeof *file);
    if (!file) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    size_t path_len = strlen(path);
    file->path = malloc(path_len + 1);
    if (!file->path) {
        free(file);
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(file->path, path, path_len + 1);
    r2gen_status status = map_file(path, file, err);
    if (status != R2GEN_OK) {
        gguf_close(file);
        return status;
    }
    status = open_parsed(file, out, err);
    if (status != R2GEN_OK) error_prefix(err, "%s: ", path);
    return status;
}

void gguf_close(gguf_file *file)
{
    if (!file) return;
    if (file->mapped) munmap((void *)file->base, file->size);
    free(file->kv);
    free(file->tensors);
    free(file->by_name);
    free(file->names);
    free(file->path);
    free(file);
}

uint32_t gguf_version(const gguf_file *file) { return file->version; }
const char *gguf_path(const gguf_file *file) { return file->path ? file->path : "(memory)"; }
size_t gguf_n_kv(const gguf_file *file) { return file->n_kv; }

const char *gguf_key_at(const gguf_file *file, size_t i, size_t *len)
{
    if (i >= file->n_kv) return NULL;
    *len = (size_t)file->kv[i].key.len;
    return file->kv[i].key.data;
}

size_t gguf_n_tensors(const gguf_file *file) { return file->n_tensors; }

const tensor *gguf_tensor_at(const gguf_file *file, size_t i)
{
    return i < file->n_tensors ? &file->tensors[i] : NULL;
}

const tensor *gguf_find_tensor(const gguf_file *file, const char *name)
{
    name_entry key = {name, 0};
    const name_entry *hit =
        bsearch(&key, file->by_name, file->n_tensors, sizeof *file->by_name, compare_entries);
    return hit ? &file->tensors[hit->index] : NULL;
}

/* ---- typed metadata access ---- */

static int value_as_u64(const gguf_value *v, uint64_t *out)
{
    switch (v->type) {
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64: *out = v->as.u64; return 1;
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64:
        if (v->as.i64 < 0) return 0;
        *out = (uint64_t)v->as.i64;
        return 1;
    default: return 0;
    }
}

static int value_as_f64(const gguf_value *v, double *out)
{
    uint64_t u;
    if (v->type == GGUF_F32 || v->type == GGUF_F64) {
        *out = v->as.f64;
        return 1;
    }
    if (v->type == GGUF_I8 || v->type == GGUF_I16 || v->type == GGUF_I32 || v->type == GGUF_I64) {
        *out = (double)v->as.i64;
        return 1;
    }
    if (value_as_u64(v, &u)) {
        *out = (double)u;
        return 1;
    }
    return 0;
}

r2gen_status gguf_get_u32(const gguf_file *file, const char *key, uint32_t *out, error *err)
{
    const gguf_value *v = gguf_find(file, key);
    uint64_t u;
    if (!v) return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' is missing", key);
    if (!value_as_u64(v, &u) || u > UINT32_MAX)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' is not a u32", key);
    *out = (uint32_t)u;
    return R2GEN_OK;
}

r2gen_status gguf_get_u32_or(const gguf_file *file, const char *key, uint32_t fallback,
                             uint32_t *out, error *err)
{
    if (!gguf_find(file, key)) {
        *out = fallback;
        return R2GEN_OK;
    }
    return gguf_get_u32(file, key, out, err);
}

r2gen_status gguf_get_f32(const gguf_file *file, const char *key, float *out, error *err)
{
    const gguf_value *v = gguf_find(file, key);
    double d;
    if (!v) return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' is missing", key);
    if (!value_as_f64(v, &d))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' is not a number", key);
    *out = (float)d;
    return R2GEN_OK;
}

r2gen_status gguf_get_f32_or(const gguf_file *file, const char *key, float fallback, float *out,
                             error *err)
{
    if (!gguf_find(file, key)) {
        *out = fallback;
        return R2GEN_OK;
    }
    return gguf_get_f32(file, key, out, err);
}

r2gen_status gguf_get_string(const gguf_file *file, const char *key, char **out, error *err)
{
    const gguf_value *v = gguf_find(file, key);
    *out = NULL;
    if (!v) return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' is missing", key);
    if (v->type != GGUF_STRING)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' is not a string", key);
    if (memchr(v->as.str.data, '\0', v->as.str.len))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' holds a NUL byte", key);
    char *copy = malloc(v->as.str.len + 1);
    if (!copy) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(copy, v->as.str.data, v->as.str.len);
    copy[v->as.str.len] = '\0';
    *out = copy;
    return R2GEN_OK;
}

/* Find a numeric array and check it fits `capacity`. */
static r2gen_status find_numeric_array(const gguf_file *file, const char *key, size_t capacity,
                                       const gguf_value **out, error *err)
{
    const gguf_value *v = gguf_find(file, key);
    if (!v) return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' is missing", key);
    if (v->type != GGUF_ARRAY || !scalar_size(v->elem_type) || v->elem_type == GGUF_BOOL)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' is not a numeric array",
                         key);
    if (v->count > capacity)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' has %llu values (at most %zu)",
                         key, (unsigned long long)v->count, capacity);
    *out = v;
    return R2GEN_OK;
}

/* Element converters for get_numeric_array: store element i of `elem` into out, or return 0 when
 * it does not fit the requested type. */
static int store_u32(const gguf_value *elem, void *out, size_t i)
{
    uint64_t u;
    if (!value_as_u64(elem, &u) || u > UINT32_MAX) return 0;
    ((uint32_t *)out)[i] = (uint32_t)u;
    return 1;
}

static int store_f32(const gguf_value *elem, void *out, size_t i)
{
    double d;
    if (!value_as_f64(elem, &d)) return 0;
    ((float *)out)[i] = (float)d;
    return 1;
}

static r2gen_status get_numeric_array(const gguf_file *file, const char *key, void *out,
                                      size_t capacity, size_t *n,
                                      int (*store)(const gguf_value *, void *, size_t),
                                      const char *type_name, error *err)
{
    const gguf_value *v = NULL;
    r2gen_status status = find_numeric_array(file, key, capacity, &v, err);
    if (status != R2GEN_OK) return status;
    size_t size = scalar_size(v->elem_type);
    for (size_t i = 0; i < v->count; i++) {
        gguf_value elem;
        decode_scalar(v->elems + i * size, v->elem_type, &elem);
        if (!store(&elem, out, i))
            return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s': element %zu is not a %s",
                             key, i, type_name);
    }
    *n = (size_t)v->count;
    return R2GEN_OK;
}

r2gen_status gguf_get_u32_array(const gguf_file *file, const char *key, uint32_t *out,
                                size_t capacity, size_t *n, error *err)
{
    return get_numeric_array(file, key, out, capacity, n, store_u32, "u32", err);
}

r2gen_status gguf_get_f32_array(const gguf_file *file, const char *key, float *out,
                                size_t capacity, size_t *n, error *err)
{
    return get_numeric_array(file, key, out, capacity, n, store_f32, "number", err);
}

gguf_string gguf_array_string(const uint8_t **cursor_pos)
{
    gguf_string s;
    uint64_t len;
    memcpy(&len, *cursor_pos, sizeof len);
    s.data = (const char *)*cursor_pos + sizeof len;
    s.len = len;
    *cursor_pos += sizeof len + len;
    return s;
}

void gguf_release_tensor(const gguf_file *file, const tensor *t)
{
    if (!file->mapped) return; /* a caller's buffer: dropping pages would zero them */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)t->data + page - 1) / page * page;
    uintptr_t end = ((uintptr_t)t->data + t->n_bytes) / page * page;
    if (end > start) madvise((void *)start, end - start, MADV_DONTNEED);
}

static void format_shape(char *buf, size_t size, int n_dims, const int64_t *ne)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int d = 0; d < n_dims && at < size; d++)
        at += (size_t)snprintf(buf + at, size - at, d ? ", %lld" : "%lld", (long long)ne[d]);
}

r2gen_status gguf_require_tensor(const gguf_file *file, const char *name, uint64_t allowed_types,
                                 int n_dims, const int64_t *ne, const tensor **out, error *err)
{
    const tensor *t = gguf_find_tensor(file, name);
    *out = NULL;
    if (!t) return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor '%s' is missing", name);
    if (t->type >= 64 || !(allowed_types & (1ull << t->type)))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor '%s' has type %s, not allowed there",
                         name, tensor_type_name(t->type));
    int same = 1;
    for (int d = 0; d < TENSOR_MAX_DIMS; d++)
        if (t->ne[d] != (d < n_dims ? ne[d] : 1)) same = 0;
    if (!same) {
        char want[96], have[96];
        format_shape(want, sizeof want, n_dims, ne);
        format_shape(have, sizeof have, t->n_dims, t->ne);
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tensor '%s' has shape (%s), expected (%s)",
                         name, have, want);
    }
    *out = t;
    return R2GEN_OK;
}
