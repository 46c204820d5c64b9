/* SPDX-License-Identifier: GPL-3.0-or-later */
/* r2gen-orthanc: an Orthanc plugin that writes draft chest X-ray reports with libr2gen.
 *
 *   POST /r2gen/studies/{id}/report     every usable CR/DX view of a study
 *   POST /r2gen/instances/{id}/report   one image
 *
 * The model is loaded once when Orthanc starts; a fixed set of workers (one forked context each)
 * writes the reports behind a bounded queue, so Orthanc's HTTP threads only wait for their own
 * request and a burst beyond the queue is answered 503 at once. */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <orthanc/OrthancCPlugin.h>

#include "config.h"
#include "r2gen.h"
#include "report_job.h"
#include "views.h"
#include "work_queue.h"

#define PLUGIN_NAME "r2gen"
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define PLUGIN_VERSION STRINGIFY(R2GEN_VERSION_MAJOR) "." STRINGIFY(R2GEN_VERSION_MINOR) "." \
    STRINGIFY(R2GEN_VERSION_PATCH)

/* Orthanc loads a plugin once per process: its state is this one object. */
static struct plugin {
    OrthancPluginContext *orthanc;
    plugin_config config;
    r2gen_ctx *model;
    work_queue *queue;
    long long model_bytes, llm_bytes;
} plugin;

typedef enum log_level { LOG_INFO, LOG_WARNING, LOG_ERROR } log_level;

static void log_message(log_level level, const char *format, ...)
{
    char text[1024];
    va_list args;
    va_start(args, format);
    int n = snprintf(text, sizeof text, "R2Gen: ");
    vsnprintf(text + n, sizeof text - (size_t)n, format, args);
    va_end(args);
    if (level == LOG_ERROR) OrthancPluginLogError(plugin.orthanc, text);
    else if (level == LOG_WARNING) OrthancPluginLogWarning(plugin.orthanc, text);
    else OrthancPluginLogInfo(plugin.orthanc, text);
}

static json_object *sequence_of(json_object *item)
{
    json_object *sequence = json_object_new_array();
    json_object_array_add(sequence, item);
    return sequence;
}

static json_object *add_string(json_object *object, const char *key, const char *value)
{
    json_object_object_add(object, key, json_object_new_string(value));
    return object;
}

static void answer_json(OrthancPluginRestOutput *output, json_object *body)
{
    size_t length;
    const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PRETTY, &length);
    OrthancPluginAnswerBuffer(plugin.orthanc, output, text, (uint32_t)length, "application/json");
}

/* An error as Orthanc's own REST API describes one. */
static void answer_error(OrthancPluginRestOutput *output, int http_status, const char *message)
{
    json_object *body = json_object_new_object();
    json_object_object_add(body, "HttpStatus", json_object_new_int(http_status));
    add_string(body, "Message", message);
    if (http_status == 503) {
        char seconds[16];
        snprintf(seconds, sizeof seconds, "%d", plugin.config.retry_after_s);
        OrthancPluginSetHttpHeader(plugin.orthanc, output, "Retry-After", seconds);
    }
    size_t length;
    const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PRETTY, &length);
    OrthancPluginSendHttpStatus(plugin.orthanc, output, (uint16_t)http_status, text,
                                (uint32_t)length);
    json_object_put(body);
}

/* CurrentRequestedProcedureEvidenceSequence: the images the report was written from, by series. */
static json_object *code_item(const char *value, const char *scheme, const char *meaning)
{
    json_object *item = add_string(json_object_new_object(), "CodeValue", value);
    add_string(item, "CodingSchemeDesignator", scheme);
    return sequence_of(add_string(item, "CodeMeaning", meaning));
}

static json_object *evidence(const view *views, int n_views)
{
    json_object *series_list = json_object_new_array();
    for (int i = 0; i < n_views; i++) {
        json_object *series = NULL, *sops;
        for (size_t k = 0; k < json_object_array_length(series_list) && !series; k++) {
            json_object *candidate = json_object_array_get_idx(series_list, k), *uid;
            json_object_object_get_ex(candidate, "SeriesInstanceUID", &uid);
            if (!strcmp(json_object_get_string(uid), views[i].series_instance_uid))
                series = candidate;
        }
        if (!series) {
            series = add_string(json_object_new_object(), "SeriesInstanceUID",
                                views[i].series_instance_uid);
            json_object_object_add(series, "ReferencedSOPSequence", json_object_new_array());
            json_object_array_add(series_list, series);
        }
        json_object *sop = add_string(json_object_new_object(), "ReferencedSOPClassUID",
                                      views[i].sop_class_uid);
        add_string(sop, "ReferencedSOPInstanceUID", views[i].sop_instance_uid);
        json_object_object_get_ex(series, "ReferencedSOPSequence", &sops);
        json_object_array_add(sops, sop);
    }
    json_object *study = add_string(json_object_new_object(), "StudyInstanceUID",
                                    n_views ? views[0].study_instance_uid : "");
    json_object_object_add(study, "ReferencedSeriesSequence", series_list);
    return sequence_of(study);
}

/* A Basic Text SR (PS3.3 A.35.1) holding the report as one TEXT finding, in a new series of the
 * study, so viewers list it with the images. */
static json_object *report_sr_request(const char *study_id, const char *report,
                                      const view *views, int n_views)
{
    json_object *finding = json_object_new_object();
    add_string(finding, "RelationshipType", "CONTAINS");
    add_string(finding, "ValueType", "TEXT");
    json_object_object_add(finding, "ConceptNameCodeSequence",
                           code_item("121071", "DCM", "Finding"));
    add_string(finding, "TextValue", report);

    json_object *tags = json_object_new_object();
    add_string(tags, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.88.11");
    add_string(tags, "Modality", "SR");
    add_string(tags, "SeriesDescription", "R2Gen draft report (AI-generated, unverified)");
    add_string(tags, "ValueType", "CONTAINER");
    json_object_object_add(tags, "ConceptNameCodeSequence",
                           code_item("18748-4", "LN", "Diagnostic Imaging Report"));
    add_string(tags, "ContinuityOfContent", "SEPARATE");
    add_string(tags, "CompletionFlag", "PARTIAL");
    add_string(tags, "VerificationFlag", "UNVERIFIED");
    json_object_object_add(tags, "ContentSequence", sequence_of(finding));
    json_object_object_add(tags, "CurrentRequestedProcedureEvidenceSequence",
                           evidence(views, n_views));

    json_object *request = json_object_new_object();
    add_string(request, "Parent", study_id);
    json_object_object_add(request, "Tags", tags);
    return request;
}

/* Store the report into the study; the new instance's id, or NULL (logged). */
static json_object *store_report(const char *study_id, const report_job *job)
{
    json_object *request = report_sr_request(study_id, job->report, job->views, job->n_views);
    json_object *answer = NULL, *id = NULL;
    size_t length;
    const char *body = json_object_to_json_string_length(request, JSON_C_TO_STRING_PLAIN, &length);
    OrthancPluginMemoryBuffer created;
    OrthancPluginErrorCode code = OrthancPluginRestApiPost(plugin.orthanc, &created,
                                                           "/tools/create-dicom", body,
                                                           (uint32_t)length);
    json_object_put(request);
    if (code != OrthancPluginErrorCode_Success) {
        log_message(LOG_WARNING, "cannot store the report into study %s: %s", study_id,
                    OrthancPluginGetErrorDescription(plugin.orthanc, code));
        return NULL;
    }
    json_tokener *tokener = json_tokener_new();
    if (tokener) answer = json_tokener_parse_ex(tokener, created.data, (int)created.size);
    json_tokener_free(tokener);
    OrthancPluginFreeMemoryBuffer(plugin.orthanc, &created);
    if (answer && json_object_object_get_ex(answer, "ID", &id)) json_object_get(id);
    json_object_put(answer);
    return id;
}

static json_object *model_identity(void)
{
    const plugin_config *c = &plugin.config;
    json_object *model = json_object_new_object();
    add_string(model, "File", c->model_path);
    json_object_object_add(model, "Bytes", json_object_new_int64(plugin.model_bytes));
    if (c->llm_path) {
        add_string(model, "LlmFile", c->llm_path);
        json_object_object_add(model, "LlmBytes", json_object_new_int64(plugin.llm_bytes));
    }
    add_string(model, "Library", r2gen_version());
    add_string(model, "Preset", c->preset);
    json_object_object_add(model, "Beams", json_object_new_int(c->generate.num_beams));
    json_object_object_add(model, "MinNewTokens", json_object_new_int(c->generate.min_new_tokens));
    json_object_object_add(model, "MaxNewTokens", json_object_new_int(c->generate.max_new_tokens));
    return model;
}

static json_object *instances_used(const view *views, int n_views)
{
    json_object *list = json_object_new_array();
    for (int i = 0; i < n_views; i++) {
        json_object *item = json_object_new_object();
        add_string(item, "ID", views[i].id);
        add_string(item, "SOPInstanceUID", views[i].sop_instance_uid);
        add_string(item, "Modality", views[i].modality);
        add_string(item, "ViewPosition", views[i].view_position);
        json_object_array_add(list, item);
    }
    return list;
}

static json_object *timings(const report_job *job)
{
    json_object *t = json_object_new_object();
    json_object_object_add(t, "QueueSeconds", json_object_new_double(job->started - job->submitted));
    json_object_object_add(t, "DecodeSeconds", json_object_new_double(job->decode_s));
    json_object_object_add(t, "EncodeSeconds", json_object_new_double(job->encode_s));
    json_object_object_add(t, "GenerateSeconds", json_object_new_double(job->generate_s));
    json_object_object_add(t, "TotalSeconds",
                           json_object_new_double(monotonic_seconds() - job->submitted));
    return t;
}

static void answer_report(OrthancPluginRestOutput *output, const report_job *job,
                          const char *study_id)
{
    json_object *body = json_object_new_object();
    add_string(body, "Report", job->report);
    add_string(body, "Study", study_id);
    json_object_object_add(body, "Instances", instances_used(job->views, job->n_views));
    json_object_object_add(body, "Model", model_identity());
    if (plugin.config.store_report)
        json_object_object_add(body, "StoredReport", store_report(study_id, job));
    json_object_object_add(body, "Timings", timings(job));
    answer_json(output, body);
    json_object_put(body);
}

/* Both routes: find the views on this HTTP thread (cheap, and unknown ids fail at once), then
 * wait for a worker to write the report. */
static OrthancPluginErrorCode serve(OrthancPluginRestOutput *output,
                                    const OrthancPluginHttpRequest *request, int whole_study)
{
    if (request->method != OrthancPluginHttpMethod_Post) {
        OrthancPluginSendMethodNotAllowed(plugin.orthanc, output, "POST");
        return OrthancPluginErrorCode_Success;
    }
    const char *id = request->groups[0];
    char study_id[64] = "";
    view one, *views = NULL;
    int n_views = 0;
    lookup_status found = {404, ""};
    if (!views_valid_id(id)) {
        snprintf(found.message, sizeof found.message, "unknown %s %s",
                 whole_study ? "study" : "instance", id);
    } else if (whole_study) {
        found = views_of_study(plugin.orthanc, &plugin.config, id, &views, &n_views);
        snprintf(study_id, sizeof study_id, "%s", id);
    } else {
        found = views_of_instance(plugin.orthanc, id, &one, study_id);
        views = &one;
        n_views = 1;
    }
    if (found.http_status != 200) {
        answer_error(output, found.http_status, found.message);
        return OrthancPluginErrorCode_Success;
    }
    report_job job = {0};
    job.orthanc = plugin.orthanc;
    job.generate = &plugin.config.generate;
    job.queue = plugin.queue;
    job.views = views;
    job.n_views = n_views;
    job.submitted = monotonic_seconds();
    work_result result = work_queue_run(plugin.queue, &job);
    if (result == WORK_FULL)
        answer_error(output, 503, "busy: every worker is writing a report and the queue is full");
    else if (result == WORK_STOPPED || job.http_status == 503)
        answer_error(output, 503, "Orthanc is stopping");
    else if (job.http_status != 200)
        answer_error(output, job.http_status, job.message);
    else
        answer_report(output, &job, study_id);
    if (job.http_status != 200 && job.http_status != 0)
        log_message(LOG_WARNING, "%s %s: %s", whole_study ? "study" : "instance", id, job.message);
    r2gen_string_free(job.report);
    if (whole_study) free(views);
    return OrthancPluginErrorCode_Success;
}

static OrthancPluginErrorCode study_report(OrthancPluginRestOutput *output, const char *url,
                                           const OrthancPluginHttpRequest *request)
{
    (void)url;
    return serve(output, request, 1);
}

static OrthancPluginErrorCode instance_report(OrthancPluginRestOutput *output, const char *url,
                                              const OrthancPluginHttpRequest *request)
{
    (void)url;
    return serve(output, request, 0);
}

static long long file_bytes(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static int load_model(void)
{
    const plugin_config *c = &plugin.config;
    r2gen_load_params params = r2gen_load_params_default();
    params.llm_path = c->llm_path;
    params.n_threads = c->threads;
    if (r2gen_load(c->model_path, &params, &plugin.model) != R2GEN_OK) {
        log_message(LOG_ERROR, "refusing to start: cannot load the model %s: %s", c->model_path,
                    r2gen_last_error(NULL));
        return -1;
    }
    plugin.model_bytes = file_bytes(c->model_path);
    plugin.llm_bytes = file_bytes(c->llm_path);
    return 0;
}

static void release(void)
{
    work_queue_stop(plugin.queue);
    r2gen_free(plugin.model);
    config_free(&plugin.config);
    plugin.queue = NULL;
    plugin.model = NULL;
}

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext *context)
{
    memset(&plugin, 0, sizeof plugin);
    plugin.orthanc = context;
    if (!OrthancPluginCheckVersion(context)) {
        log_message(LOG_ERROR, "refusing to start: Orthanc %s is older than the %d.%d.%d this "
                               "plugin was built for", context->orthancVersion,
                    ORTHANC_PLUGINS_MINIMAL_MAJOR_NUMBER, ORTHANC_PLUGINS_MINIMAL_MINOR_NUMBER,
                    ORTHANC_PLUGINS_MINIMAL_REVISION_NUMBER);
        return -1;
    }
    OrthancPluginSetDescription(context, "Draft chest X-ray reports with R2GenGPT (libr2gen)");
    char *configuration = OrthancPluginGetConfiguration(context), message[512];
    int parsed = configuration ? config_parse(configuration, &plugin.config, message,
                                              sizeof message)
                               : -1;
    if (!configuration) snprintf(message, sizeof message, "Orthanc gave no configuration");
    OrthancPluginFreeString(context, configuration);
    if (parsed != 0) {
        log_message(LOG_ERROR, "refusing to start: %s", message);
        release();
        return -1;
    }
    if (load_model() != 0) {
        release();
        return -1;
    }
    plugin.queue = work_queue_start(plugin.model, plugin.config.concurrency,
                                    plugin.config.queue_size, report_job_run, NULL, message,
                                    sizeof message);
    if (!plugin.queue) {
        log_message(LOG_ERROR, "refusing to start: %s", message);
        release();
        return -1;
    }
    OrthancPluginRegisterRestCallbackNoLock(context, "/r2gen/studies/([^/]+)/report",
                                            study_report);
    OrthancPluginRegisterRestCallbackNoLock(context, "/r2gen/instances/([^/]+)/report",
                                            instance_report);
    log_message(LOG_WARNING, "ready: model %s (%lld bytes), libr2gen %s, preset %s, %d worker(s) "
                             "of %d thread(s), queue of %d", plugin.config.model_path,
                plugin.model_bytes, r2gen_version(), plugin.config.preset,
                plugin.config.concurrency, plugin.config.threads, plugin.config.queue_size);
    return 0;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize(void)
{
    release();
}

ORTHANC_PLUGINS_API const char *OrthancPluginGetName(void)
{
    return PLUGIN_NAME;
}

ORTHANC_PLUGINS_API const char *OrthancPluginGetVersion(void)
{
    return PLUGIN_VERSION;
}
