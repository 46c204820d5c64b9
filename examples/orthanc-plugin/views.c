/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "views.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lookup_status status_of(int http_status, const char *format, ...)
{
    lookup_status s = {http_status, ""};
    va_list args;
    va_start(args, format);
    vsnprintf(s.message, sizeof s.message, format, args);
    va_end(args);
    return s;
}

/* GET uri from Orthanc's REST API as JSON. 200, 404 (unknown resource) or 500. */
static lookup_status get_json(OrthancPluginContext *orthanc, const char *uri, json_object **out)
{
    OrthancPluginMemoryBuffer answer;
    OrthancPluginErrorCode code = OrthancPluginRestApiGet(orthanc, &answer, uri);
    if (code == OrthancPluginErrorCode_UnknownResource) return status_of(404, "%s: unknown", uri);
    if (code != OrthancPluginErrorCode_Success)
        return status_of(500, "%s: %s", uri, OrthancPluginGetErrorDescription(orthanc, code));
    json_tokener *tokener = json_tokener_new();
    *out = tokener ? json_tokener_parse_ex(tokener, answer.data, (int)answer.size) : NULL;
    json_tokener_free(tokener);
    OrthancPluginFreeMemoryBuffer(orthanc, &answer);
    return *out ? status_of(200, "") : status_of(500, "%s: the answer is not JSON", uri);
}

static const char *tag_text(json_object *tags, const char *name)
{
    json_object *v;
    if (!json_object_object_get_ex(tags, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* The first value of a numeric tag (multi-valued tags are "a\b"); 0 when absent or not a number. */
static int tag_number(json_object *tags, const char *name, double *out)
{
    const char *text = tag_text(tags, name);
    char *end;
    if (!text) return 0;
    double v = strtod(text, &end);
    if (end == text) return 0;
    *out = v;
    return 1;
}

static void copy_text(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
    /* DICOM pads odd-length strings with a space; the simplified tags may keep it. */
    size_t n = strlen(dst);
    while (n > 0 && dst[n - 1] == ' ') dst[--n] = '\0';
}

static display_params display_of(json_object *tags)
{
    display_params d = display_params_default();
    const char *photometric = tag_text(tags, "PhotometricInterpretation");
    d.monochrome1 = photometric && !strncmp(photometric, "MONOCHROME1", 11);
    tag_number(tags, "RescaleSlope", &d.rescale_slope);
    tag_number(tags, "RescaleIntercept", &d.rescale_intercept);
    d.has_window = tag_number(tags, "WindowCenter", &d.window_center) &&
                   tag_number(tags, "WindowWidth", &d.window_width);
    const char *function = tag_text(tags, "VOILUTFunction");
    if (function && !strncmp(function, "LINEAR_EXACT", 12)) d.function = VOI_LINEAR_EXACT;
    else if (function && !strncmp(function, "SIGMOID", 7)) d.function = VOI_SIGMOID;
    /* LINEAR needs a width of at least 1, the others more than 0; otherwise show the range. */
    if (d.has_window && !(d.window_width >= (d.function == VOI_LINEAR ? 1.0 : 1e-9)))
        d.has_window = 0;
    return d;
}

/* Read an instance's tags into v; 400 when it has no image. */
static lookup_status read_view(OrthancPluginContext *orthanc, const char *id, view *v)
{
    char uri[128];
    json_object *tags = NULL;
    snprintf(uri, sizeof uri, "/instances/%s/tags?simplify", id);
    lookup_status s = get_json(orthanc, uri, &tags);
    if (s.http_status != 200) return s;
    double number = 0;
    memset(v, 0, sizeof *v);
    copy_text(v->id, sizeof v->id, id);
    copy_text(v->sop_instance_uid, sizeof v->sop_instance_uid, tag_text(tags, "SOPInstanceUID"));
    copy_text(v->sop_class_uid, sizeof v->sop_class_uid, tag_text(tags, "SOPClassUID"));
    copy_text(v->series_instance_uid, sizeof v->series_instance_uid,
              tag_text(tags, "SeriesInstanceUID"));
    copy_text(v->study_instance_uid, sizeof v->study_instance_uid,
              tag_text(tags, "StudyInstanceUID"));
    copy_text(v->modality, sizeof v->modality, tag_text(tags, "Modality"));
    copy_text(v->view_position, sizeof v->view_position, tag_text(tags, "ViewPosition"));
    v->series_number = tag_number(tags, "SeriesNumber", &number) ? (int)number : 0;
    v->instance_number = tag_number(tags, "InstanceNumber", &number) ? (int)number : 0;
    v->display = display_of(tags);
    int has_image = tag_number(tags, "Rows", &number) && number > 0;
    json_object_put(tags);
    return has_image ? status_of(200, "") : status_of(400, "instance %s has no image", id);
}

int views_valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= sizeof(((view *)0)->id)) return 0;
    return strspn(id, "0123456789abcdef-") == n;
}

static int is_lateral(const view *v)
{
    static const char *lateral[] = {"LL", "RL", "LATERAL", "LAT"};
    for (size_t i = 0; i < sizeof lateral / sizeof *lateral; i++)
        if (!strcmp(v->view_position, lateral[i])) return 1;
    return 0;
}

/* Frontal before lateral, then series, instance number and id: the same study always gives the
 * same views in the same order, and so the same report. */
static int compare_views(const void *pa, const void *pb)
{
    const view *a = pa, *b = pb;
    if (is_lateral(a) != is_lateral(b)) return is_lateral(a) - is_lateral(b);
    if (a->series_number != b->series_number) return a->series_number < b->series_number ? -1 : 1;
    if (a->instance_number != b->instance_number)
        return a->instance_number < b->instance_number ? -1 : 1;
    return strcmp(a->id, b->id);
}

static const char *series_modality(json_object *series)
{
    json_object *main_tags;
    if (!json_object_object_get_ex(series, "MainDicomTags", &main_tags)) return NULL;
    return tag_text(main_tags, "Modality");
}

/* Add the series' instances that count to views (room for capacity). */
static lookup_status add_series_views(OrthancPluginContext *orthanc, const plugin_config *config,
                                      json_object *series, view *views, int *n, int capacity)
{
    json_object *instances;
    if (!json_object_object_get_ex(series, "Instances", &instances) ||
        !json_object_is_type(instances, json_type_array))
        return status_of(500, "a series without a list of instances");
    size_t count = json_object_array_length(instances);
    for (size_t i = 0; i < count && *n < capacity; i++) {
        const char *id = json_object_get_string(json_object_array_get_idx(instances, i));
        if (!id || !views_valid_id(id)) continue;
        lookup_status s = read_view(orthanc, id, &views[*n]);
        if (s.http_status == 400) continue;
        if (s.http_status != 200) return s;
        if (config_has_name(config->view_positions, config->n_view_positions,
                            views[*n].view_position))
            (*n)++;
    }
    return status_of(200, "");
}

static size_t instance_count(json_object *series_list)
{
    size_t total = 0;
    for (size_t i = 0; i < json_object_array_length(series_list); i++) {
        json_object *instances;
        if (json_object_object_get_ex(json_object_array_get_idx(series_list, i), "Instances",
                                      &instances))
            total += json_object_array_length(instances);
    }
    return total;
}

lookup_status views_of_study(OrthancPluginContext *orthanc, const plugin_config *config,
                             const char *study_id, view **out, int *n_out)
{
    char uri[128];
    json_object *series_list = NULL;
    snprintf(uri, sizeof uri, "/studies/%s/series", study_id);
    lookup_status s = get_json(orthanc, uri, &series_list);
    if (s.http_status == 404) return status_of(404, "unknown study %s", study_id);
    if (s.http_status != 200) return s;
    size_t capacity = instance_count(series_list);
    view *views = malloc((capacity ? capacity : 1) * sizeof *views);
    int n = 0;
    if (!views) s = status_of(500, "out of memory");
    for (size_t i = 0; views && s.http_status == 200 && i < json_object_array_length(series_list);
         i++) {
        json_object *series = json_object_array_get_idx(series_list, i);
        const char *modality = series_modality(series);
        if (modality && config_has_name(config->modalities, config->n_modalities, modality))
            s = add_series_views(orthanc, config, series, views, &n, (int)capacity);
    }
    json_object_put(series_list);
    if (s.http_status == 200 && n == 0)
        s = status_of(400, "study %s has no usable image (modality and view position as "
                           "configured in R2Gen.Modalities and R2Gen.ViewPositions)", study_id);
    if (s.http_status != 200) {
        free(views);
        return s;
    }
    qsort(views, (size_t)n, sizeof *views, compare_views);
    *out = views;
    *n_out = n < config->max_views ? n : config->max_views;
    return s;
}

lookup_status views_of_instance(OrthancPluginContext *orthanc, const char *instance_id, view *v,
                                char *study_id)
{
    char uri[128];
    json_object *study = NULL, *id;
    lookup_status s = read_view(orthanc, instance_id, v);
    if (s.http_status == 404) return status_of(404, "unknown instance %s", instance_id);
    if (s.http_status != 200) return s;
    snprintf(uri, sizeof uri, "/instances/%s/study", instance_id);
    if ((s = get_json(orthanc, uri, &study)).http_status != 200) return s;
    if (json_object_object_get_ex(study, "ID", &id))
        copy_text(study_id, sizeof v->id, json_object_get_string(id));
    else s = status_of(500, "%s: no ID", uri);
    json_object_put(study);
    return s;
}
