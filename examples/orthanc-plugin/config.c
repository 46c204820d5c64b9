/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct config_error {
    char *text;
    size_t size;
} config_error;

static int fail(config_error *e, const char *key, const char *what)
{
    snprintf(e->text, e->size, "R2Gen%s%s %s", *key ? "." : "", key, what);
    return -1;
}

static int read_string(json_object *section, const char *key, char **out, config_error *e)
{
    json_object *v;
    if (!json_object_object_get_ex(section, key, &v)) return 0;
    if (!json_object_is_type(v, json_type_string)) return fail(e, key, "must be a string");
    *out = strdup(json_object_get_string(v));
    return *out ? 0 : fail(e, key, "cannot be copied: out of memory");
}

static int read_int(json_object *section, const char *key, int min, int max, int *out,
                    config_error *e)
{
    json_object *v;
    if (!json_object_object_get_ex(section, key, &v)) return 0;
    if (!json_object_is_type(v, json_type_int)) return fail(e, key, "must be an integer");
    int64_t n = json_object_get_int64(v);
    if (n < min || n > max) {
        char what[64];
        snprintf(what, sizeof what, "must be within %d..%d", min, max);
        return fail(e, key, what);
    }
    *out = (int)n;
    return 0;
}

static int read_bool(json_object *section, const char *key, int *out, config_error *e)
{
    json_object *v;
    if (!json_object_object_get_ex(section, key, &v)) return 0;
    if (!json_object_is_type(v, json_type_boolean)) return fail(e, key, "must be true or false");
    *out = json_object_get_boolean(v);
    return 0;
}

static int read_names(json_object *section, const char *key, char **names, int *n,
                      config_error *e)
{
    json_object *v;
    if (!json_object_object_get_ex(section, key, &v)) return 0;
    if (!json_object_is_type(v, json_type_array)) return fail(e, key, "must be a list of strings");
    size_t count = json_object_array_length(v);
    if (count > CONFIG_MAX_NAMES) return fail(e, key, "has too many entries");
    for (int i = 0; i < *n; i++) free(names[i]);
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        json_object *item = json_object_array_get_idx(v, i);
        if (!json_object_is_type(item, json_type_string))
            return fail(e, key, "must be a list of strings");
        if (!(names[(*n)++] = strdup(json_object_get_string(item))))
            return fail(e, key, "cannot be copied: out of memory");
    }
    return 0;
}

static int read_preset(json_object *section, plugin_config *c, config_error *e)
{
    char *name = NULL;
    if (read_string(section, "Preset", &name, e)) return -1;
    if (name) {
        snprintf(c->preset, sizeof c->preset, "%s", name);
        free(name);
    }
    if (!strcmp(c->preset, "mimic")) c->generate = r2gen_generate_params_preset(R2GEN_PRESET_MIMIC_CXR);
    else if (!strcmp(c->preset, "iu")) c->generate = r2gen_generate_params_preset(R2GEN_PRESET_IU_XRAY);
    else return fail(e, "Preset", "must be \"mimic\" or \"iu\"");
    if (read_int(section, "Beams", 1, 16, &c->generate.num_beams, e) ||
        read_int(section, "MinNewTokens", 0, 4096, &c->generate.min_new_tokens, e) ||
        read_int(section, "MaxNewTokens", 1, 4096, &c->generate.max_new_tokens, e))
        return -1;
    if (c->generate.min_new_tokens > c->generate.max_new_tokens)
        return fail(e, "MinNewTokens", "must not exceed MaxNewTokens");
    return 0;
}

static void set_defaults(plugin_config *c)
{
    static const char *modalities[] = {"CR", "DX"};
    static const char *positions[] = {"PA", "AP", "LL", "RL", "LATERAL", "LAT", ""};
    memset(c, 0, sizeof *c);
    c->concurrency = 1;
    c->queue_size = 4;
    c->retry_after_s = 30;
    c->max_views = 4;
    snprintf(c->preset, sizeof c->preset, "mimic");
    for (size_t i = 0; i < sizeof modalities / sizeof *modalities; i++)
        c->modalities[c->n_modalities++] = strdup(modalities[i]);
    for (size_t i = 0; i < sizeof positions / sizeof *positions; i++)
        c->view_positions[c->n_view_positions++] = strdup(positions[i]);
}

static int names_copied(char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!names[i]) return 0;
    return 1;
}

static int read_section(json_object *s, plugin_config *c, config_error *e)
{
    if (read_string(s, "Model", &c->model_path, e) || read_string(s, "LlmModel", &c->llm_path, e) ||
        read_int(s, "Threads", 0, 1024, &c->threads, e) ||
        read_int(s, "Concurrency", 1, 64, &c->concurrency, e) ||
        read_int(s, "QueueSize", 0, 4096, &c->queue_size, e) ||
        read_int(s, "RetryAfter", 1, 86400, &c->retry_after_s, e) ||
        read_int(s, "MaxViews", 1, 64, &c->max_views, e) ||
        read_bool(s, "StoreReport", &c->store_report, e) || read_preset(s, c, e) ||
        read_names(s, "Modalities", c->modalities, &c->n_modalities, e) ||
        read_names(s, "ViewPositions", c->view_positions, &c->n_view_positions, e))
        return -1;
    if (!c->model_path) return fail(e, "Model", "is missing: the path of the model GGUF");
    return 0;
}

int config_parse(const char *orthanc_json, plugin_config *c, char *message, size_t size)
{
    config_error e = {message, size};
    set_defaults(c);
    if (!names_copied(c->modalities, c->n_modalities) ||
        !names_copied(c->view_positions, c->n_view_positions))
        return fail(&e, "defaults", "cannot be set: out of memory");
    json_object *root = json_tokener_parse(orthanc_json), *section;
    int status;
    if (!root) status = fail(&e, "", "cannot be read: Orthanc's configuration is not JSON");
    else if (!json_object_object_get_ex(root, "R2Gen", &section) ||
             !json_object_is_type(section, json_type_object))
        status = fail(&e, "", "is missing: add an \"R2Gen\" object with at least \"Model\"");
    else status = read_section(section, c, &e);
    json_object_put(root);
    return status;
}

void config_free(plugin_config *c)
{
    free(c->model_path);
    free(c->llm_path);
    for (int i = 0; i < c->n_modalities; i++) free(c->modalities[i]);
    for (int i = 0; i < c->n_view_positions; i++) free(c->view_positions[i]);
    memset(c, 0, sizeof *c);
}

int config_has_name(char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}
