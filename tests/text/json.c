#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *at, *end;
    const char *error;
} parser;

static int parse_value(parser *p, json *out);

static void skip_space(parser *p)
{
    while (p->at < p->end && (*p->at == ' ' || *p->at == '\t' || *p->at == '\n' || *p->at == '\r'))
        p->at++;
}

static int fail(parser *p, const char *why)
{
    if (!p->error) p->error = why;
    return 0;
}

static int expect(parser *p, char c)
{
    skip_space(p);
    if (p->at >= p->end || *p->at != c) return fail(p, "unexpected character");
    p->at++;
    return 1;
}

static int append_bytes(char **buf, size_t *len, size_t *cap, const char *bytes, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t new_cap = (*cap ? *cap * 2 : 32) + n;
        char *grown = realloc(*buf, new_cap);
        if (!grown) return 0;
        *buf = grown;
        *cap = new_cap;
    }
    memcpy(*buf + *len, bytes, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 1;
}

static int hex4(parser *p, unsigned *out)
{
    if (p->end - p->at < 4) return fail(p, "short \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *p->at++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(p, "bad \\u escape");
    }
    *out = v;
    return 1;
}

static size_t utf8_encode(unsigned c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* \uXXXX, with a following low surrogate when XXXX is a high one. */
static int unicode_escape(parser *p, char *out, size_t *n)
{
    unsigned c, low;
    if (!hex4(p, &c)) return 0;
    if (c >= 0xD800 && c < 0xDC00) {
        if (p->end - p->at < 2 || p->at[0] != '\\' || p->at[1] != 'u')
            return fail(p, "lone high surrogate");
        p->at += 2;
        if (!hex4(p, &low) || low < 0xDC00 || low >= 0xE000) return fail(p, "bad low surrogate");
        c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
    }
    *n = utf8_encode(c, out);
    return 1;
}

static int parse_string(parser *p, char **out, size_t *out_len)
{
    if (!expect(p, '"')) return 0;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int ok = append_bytes(&buf, &len, &cap, "", 0);
    while (ok) {
        if (p->at >= p->end) {
            ok = fail(p, "unterminated string");
            break;
        }
        char c = *p->at++;
        if (c == '"') break;
        char bytes[4] = {c};
        size_t n = 1;
        if (c == '\\') {
            if (p->at >= p->end) {
                ok = fail(p, "unterminated escape");
                break;
            }
            char e = *p->at++;
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e == 'u')
                ok = unicode_escape(p, bytes, &n);
            else if (e && simple)
                bytes[0] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            else
                ok = fail(p, "bad escape");
        }
        if (ok) ok = append_bytes(&buf, &len, &cap, bytes, n);
    }
    if (!ok) {
        free(buf);
        return fail(p, "bad string");
    }
    *out = buf;
    *out_len = len;
    return 1;
}

static int add_item(json *container, json *item, char *key)
{
    size_t n = container->n_items + 1;
    json *items = realloc(container->items, n * sizeof *items);
    if (!items) return 0;
    container->items = items;
    if (container->type == JSON_OBJECT) {
        char **keys = realloc(container->keys, n * sizeof *keys);
        if (!keys) return 0;
        container->keys = keys;
        keys[n - 1] = key;
    }
    items[n - 1] = *item;
    container->n_items = n;
    return 1;
}

static void free_value(json *v)
{
    for (size_t i = 0; i < v->n_items; i++) {
        free_value(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
}

/* Arrays and objects: elements separated by ',' up to `close`. */
static int parse_container(parser *p, json *out, char close)
{
    out->type = close == ']' ? JSON_ARRAY : JSON_OBJECT;
    p->at++;
    skip_space(p);
    if (p->at < p->end && *p->at == close) {
        p->at++;
        return 1;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len;
        json item = {0};
        if (out->type == JSON_OBJECT && !(parse_string(p, &key, &key_len) && expect(p, ':'))) {
            free(key);
            return 0;
        }
        if (!parse_value(p, &item) || !add_item(out, &item, key)) {
            free_value(&item);
            free(key);
            return fail(p, "bad element");
        }
        skip_space(p);
        if (p->at < p->end && *p->at == ',') {
            p->at++;
            continue;
        }
        return expect(p, close);
    }
}

static int parse_literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(p->end - p->at) < n || memcmp(p->at, word, n) != 0) return fail(p, "bad literal");
    p->at += n;
    return 1;
}

static int parse_value(parser *p, json *out)
{
    skip_space(p);
    if (p->at >= p->end) return fail(p, "unexpected end");
    char c = *p->at;
    if (c == '{') return parse_container(p, out, '}');
    if (c == '[') return parse_container(p, out, ']');
    if (c == '"') {
        out->type = JSON_STRING;
        return parse_string(p, &out->string, &out->string_len);
    }
    if (c == 't' || c == 'f') {
        out->type = JSON_BOOL;
        out->boolean = c == 't';
        return parse_literal(p, c == 't' ? "true" : "false");
    }
    if (c == 'n') {
        out->type = JSON_NULL;
        return parse_literal(p, "null");
    }
    char *number_end;
    out->type = JSON_NUMBER;
    out->number = strtod(p->at, &number_end); /* the buffer is NUL-terminated */
    if (number_end == p->at) return fail(p, "bad value");
    p->at = number_end;
    return 1;
}

json *json_load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "json: cannot open %s\n", path);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    char chunk[65536];
    size_t got;
    int ok = 1;
    while (ok && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        ok = append_bytes(&text, &len, &cap, chunk, got);
    fclose(f);
    json *doc = calloc(1, sizeof *doc);
    parser p = {text, text + len, NULL};
    if (ok && text && doc && parse_value(&p, doc)) {
        skip_space(&p);
        if (p.at == p.end) {
            free(text);
            return doc;
        }
        fail(&p, "trailing characters");
    }
    fprintf(stderr, "json: %s: %s at byte %ld\n", path, p.error ? p.error : "out of memory",
            text ? (long)(p.at - text) : 0L);
    free(text);
    json_free(doc);
    return NULL;
}

void json_free(json *doc)
{
    if (!doc) return;
    free_value(doc);
    free(doc);
}

const json *json_get(const json *object, const char *key)
{
    if (!object || object->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < object->n_items; i++)
        if (strcmp(object->keys[i], key) == 0) return &object->items[i];
    return NULL;
}
