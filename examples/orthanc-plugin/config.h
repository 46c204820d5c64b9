/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The "R2Gen" section of Orthanc's configuration. */
#ifndef R2GEN_ORTHANC_CONFIG_H
#define R2GEN_ORTHANC_CONFIG_H

#include <stddef.h>

#include "r2gen.h"

#define CONFIG_MAX_NAMES 16

typedef struct plugin_config {
    char *model_path;       /* "Model": the R2GenGPT GGUF (required) */
    char *llm_path;         /* "LlmModel": a separate LLaMA GGUF, or NULL */
    int threads;            /* "Threads": compute threads of each worker; 0 = all CPUs */
    int concurrency;        /* "Concurrency": reports written at the same time (workers) */
    int queue_size;         /* "QueueSize": requests waiting for a worker before 503 */
    int retry_after_s;      /* "RetryAfter": seconds, sent with 503 */
    int max_views;          /* "MaxViews": views of one study at most */
    int store_report;       /* "StoreReport": store a Basic Text SR into the study */
    char preset[16];        /* "Preset": "mimic" or "iu" */
    r2gen_generate_params generate; /* the preset, then "Beams", "MinNewTokens", "MaxNewTokens" */
    char *modalities[CONFIG_MAX_NAMES];     /* "Modalities": series that count, e.g. CR, DX */
    int n_modalities;
    char *view_positions[CONFIG_MAX_NAMES]; /* "ViewPositions": ViewPosition values that count;
                                               "" stands for an absent ViewPosition */
    int n_view_positions;
} plugin_config;

/* Read the section from Orthanc's configuration (a JSON text). 0 on success; otherwise -1 and
 * message says what is wrong. Free with config_free in both cases. */
int config_parse(const char *orthanc_json, plugin_config *config, char *message, size_t size);
void config_free(plugin_config *config);

/* 1 when name is in the list. */
int config_has_name(char *const *names, int n, const char *name);

#endif
