/* SPDX-License-Identifier: GPL-3.0-or-later */
/* One report request as a worker runs it: decode every view with Orthanc's decoder, show it as a
 * viewer would, encode it, write the report. */
#ifndef R2GEN_ORTHANC_REPORT_JOB_H
#define R2GEN_ORTHANC_REPORT_JOB_H

#include <orthanc/OrthancCPlugin.h>

#include "views.h"
#include "work_queue.h"

typedef struct report_job {
    /* inputs */
    OrthancPluginContext *orthanc;
    const r2gen_generate_params *generate;
    work_queue *queue;       /* to cancel when it stops */
    const view *views;
    int n_views;
    double submitted;        /* seconds, monotonic clock */
    /* outputs */
    int http_status;         /* 200, or the failure's */
    char message[512];
    char *report;            /* r2gen_string_free */
    double started, decode_s, encode_s, generate_s, finished;
} report_job;

double monotonic_seconds(void);

/* The work_fn of the queue: job is a report_job. */
void report_job_run(void *job, r2gen_ctx *ctx, void *user);

#endif
