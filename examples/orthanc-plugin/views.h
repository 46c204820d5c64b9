/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The views of a report: which instances of a study count (by Modality and ViewPosition), in
 * which order, and how each is displayed. Read through Orthanc's own REST API. */
#ifndef R2GEN_ORTHANC_VIEWS_H
#define R2GEN_ORTHANC_VIEWS_H

#include <orthanc/OrthancCPlugin.h>

#include "config.h"
#include "display.h"

typedef struct view {
    char id[64];                /* Orthanc's instance id */
    char sop_instance_uid[65];
    char sop_class_uid[65];
    char series_instance_uid[65];
    char study_instance_uid[65];
    char modality[17];
    char view_position[17];     /* "" when absent */
    int series_number, instance_number;
    display_params display;
} view;

/* An HTTP status (200, 400, 404, 500) and what went wrong. */
typedef struct lookup_status {
    int http_status;
    char message[256];
} lookup_status;

/* 1 when id looks like an Orthanc identifier (hex digits and dashes), so it can go into a URI. */
int views_valid_id(const char *id);

/* The usable views of a study, frontal before lateral, then by series and instance number, at
 * most config->max_views. *views is malloc'ed (free it) when the status is 200. */
lookup_status views_of_study(OrthancPluginContext *orthanc, const plugin_config *config,
                             const char *study_id, view **views, int *n_views);

/* One instance as a view, whatever its modality, and the id of its study (64 bytes). */
lookup_status views_of_instance(OrthancPluginContext *orthanc, const char *instance_id,
                                view *v, char *study_id);

#endif
