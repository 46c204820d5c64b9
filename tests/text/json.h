/* A small JSON reader for the tokenizer fixtures (cases.json, expected.json): the whole document
 * as a tree. Strings are UTF-8 with their length (they may hold NULs); numbers are doubles. */
#ifndef R2GEN_TESTS_JSON_H
#define R2GEN_TESTS_JSON_H

#include <stddef.h>

typedef enum json_type {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type;

typedef struct json {
    json_type type;
    int boolean;
    double number;
    char *string; /* NUL-terminated too */
    size_t string_len;
    struct json *items; /* array elements, or object values */
    char **keys;        /* object keys, parallel to items */
    size_t n_items;
} json;

/* Parse a file; on failure prints why to stderr and returns NULL. */
json *json_load(const char *path);
void json_free(json *doc);

/* The value of `key` in an object, or NULL. */
const json *json_get(const json *object, const char *key);

#endif
