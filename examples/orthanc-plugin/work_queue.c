/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "work_queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* A submitted job; lives on the stack of the thread waiting for it. */
typedef struct ticket {
    void *job;
    work_result result;
    int finished;
    struct ticket *next;
} ticket;

typedef struct worker {
    work_queue *queue;
    r2gen_ctx *ctx;
    pthread_t thread;
} worker;

struct work_queue {
    pthread_mutex_t lock;
    pthread_cond_t has_work;  /* a ticket was queued, or stopping */
    pthread_cond_t finished;  /* some ticket finished */
    ticket *head, *tail;      /* waiting tickets, oldest first */
    int n_admitted;           /* tickets waiting or running */
    int capacity;
    atomic_int stopping;
    work_fn run;
    void *user;
    worker *workers;
    int n_workers;            /* started */
};

static void finish(work_queue *q, ticket *t, work_result result)
{
    t->result = result;
    t->finished = 1;
    pthread_cond_broadcast(&q->finished);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    work_queue *q = w->queue;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->head && !atomic_load(&q->stopping)) pthread_cond_wait(&q->has_work, &q->lock);
        if (!q->head) break;
        ticket *t = q->head;
        q->head = t->next;
        if (!q->head) q->tail = NULL;
        pthread_mutex_unlock(&q->lock);
        q->run(t->job, w->ctx, q->user);
        pthread_mutex_lock(&q->lock);
        finish(q, t, WORK_DONE);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

work_queue *work_queue_start(r2gen_ctx *model, int n_workers, int capacity, work_fn run,
                             void *user, char *message, size_t size)
{
    work_queue *q = calloc(1, sizeof *q);
    worker *workers = calloc((size_t)n_workers, sizeof *workers);
    if (!q || !workers) {
        free(q);
        free(workers);
        snprintf(message, size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->has_work, NULL);
    pthread_cond_init(&q->finished, NULL);
    q->capacity = capacity;
    q->run = run;
    q->user = user;
    q->workers = workers;
    for (int i = 0; i < n_workers; i++) {
        worker *w = &workers[i];
        w->queue = q;
        if (r2gen_ctx_fork(model, &w->ctx) != R2GEN_OK) {
            snprintf(message, size, "cannot fork a context for worker %d: %s", i,
                     r2gen_last_error(model));
            break;
        }
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            r2gen_free(w->ctx);
            snprintf(message, size, "cannot start worker thread %d", i);
            break;
        }
        q->n_workers++;
    }
    if (q->n_workers < n_workers) {
        work_queue_stop(q);
        return NULL;
    }
    return q;
}

work_result work_queue_run(work_queue *q, void *job)
{
    ticket t = {job, WORK_DONE, 0, NULL};
    pthread_mutex_lock(&q->lock);
    if (atomic_load(&q->stopping)) {
        t.result = WORK_STOPPED;
    } else if (q->n_admitted >= q->n_workers + q->capacity) {
        t.result = WORK_FULL;
    } else {
        q->n_admitted++;
        if (q->tail) q->tail->next = &t;
        else q->head = &t;
        q->tail = &t;
        pthread_cond_signal(&q->has_work);
        while (!t.finished) pthread_cond_wait(&q->finished, &q->lock);
        q->n_admitted--;
        if (atomic_load(&q->stopping)) pthread_cond_broadcast(&q->finished); /* work_queue_stop */
    }
    pthread_mutex_unlock(&q->lock);
    return t.result;
}

int work_queue_stopping(const work_queue *q)
{
    return atomic_load(&q->stopping);
}

void work_queue_stop(work_queue *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->lock);
    atomic_store(&q->stopping, 1);
    for (ticket *t = q->head; t; t = t->next) finish(q, t, WORK_STOPPED);
    q->head = q->tail = NULL;
    pthread_cond_broadcast(&q->has_work);
    /* Submitters still hold their tickets until they wake up: wait for them to leave. */
    while (q->n_admitted > 0) pthread_cond_wait(&q->finished, &q->lock);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->n_workers; i++) {
        pthread_join(q->workers[i].thread, NULL);
        r2gen_free(q->workers[i].ctx);
    }
    pthread_cond_destroy(&q->finished);
    pthread_cond_destroy(&q->has_work);
    pthread_mutex_destroy(&q->lock);
    free(q->workers);
    free(q);
}
