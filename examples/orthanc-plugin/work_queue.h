/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A bounded queue in front of a fixed set of worker threads, each owning one forked r2gen
 * context. Orthanc's HTTP threads submit jobs and wait; when every worker is busy and the queue
 * is full, submission fails at once, so a burst neither piles up memory nor ties up the server. */
#ifndef R2GEN_ORTHANC_WORK_QUEUE_H
#define R2GEN_ORTHANC_WORK_QUEUE_H

#include "r2gen.h"

typedef struct work_queue work_queue;

/* Runs one job on a worker's own context. */
typedef void (*work_fn)(void *job, r2gen_ctx *ctx, void *user);

typedef enum work_result {
    WORK_DONE = 0,  /* the job ran */
    WORK_FULL,      /* every worker busy and capacity jobs waiting: try again later */
    WORK_STOPPED    /* the queue is shutting down; the job did not run */
} work_result;

/* n_workers threads, each with a context forked from model; capacity jobs may wait. NULL when a
 * context or thread cannot be made (message says why). */
work_queue *work_queue_start(r2gen_ctx *model, int n_workers, int capacity, work_fn run,
                             void *user, char *message, size_t size);

/* Run job on a worker and wait for it to finish. */
work_result work_queue_run(work_queue *q, void *job);

/* 1 once work_queue_stop began: long jobs poll this to cancel. */
int work_queue_stopping(const work_queue *q);

/* Refuse new jobs, fail the waiting ones with WORK_STOPPED, wait for running ones, free all. */
void work_queue_stop(work_queue *q);

#endif
