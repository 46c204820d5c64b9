/* The Orthanc plugin's own logic without Orthanc: the viewer's pixel mapping (display.c) and the
 * bounded work queue (work_queue.c) with forked contexts of the r2gen-tiny model. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "display.h"
#include "r2gen.h"
#include "work_queue.h"

static void test_display_8bit(void)
{
    uint8_t in[2][3] = {{0, 100, 255}, {7, 8, 9}}, out[6];
    grey_frame frame = {8, 0, 2, 2, 3, in}; /* pitch 3 > width 2 */
    display_params p = display_params_default();
    display_to_gray8(&p, &frame, out);
    CHECK(out[0] == 0 && out[1] == 100 && out[2] == 7 && out[3] == 8, "identity: %d %d %d %d",
          out[0], out[1], out[2], out[3]);
    p.monochrome1 = 1;
    display_to_gray8(&p, &frame, out);
    CHECK(out[0] == 255 && out[1] == 155 && out[2] == 248, "MONOCHROME1 inverts: %d %d %d",
          out[0], out[1], out[2]);
}

/* The integration test's file: stored = (255 - v) * 100 + 50, intercept -50, window
 * 12750.5 / 25501 (linear: x / 100), MONOCHROME1: every v comes back. */
static void test_display_16bit_window(void)
{
    static uint16_t stored[256];
    static uint8_t out[256];
    for (int v = 0; v < 256; v++) stored[v] = (uint16_t)((255 - v) * 100 + 50);
    grey_frame frame = {16, 0, 16, 16, 16 * sizeof(uint16_t), stored};
    display_params p = display_params_default();
    p.monochrome1 = 1;
    p.rescale_intercept = -50;
    p.has_window = 1;
    p.window_center = 12750.5;
    p.window_width = 25501;
    display_to_gray8(&p, &frame, out);
    int wrong = 0;
    for (int v = 0; v < 256; v++) wrong += out[v] != v;
    CHECK(wrong == 0, "%d of 256 values wrong", wrong);
}

static void test_display_16bit_range_and_signed(void)
{
    uint16_t range[3] = {1000, 2000, 3000};
    uint8_t out[3];
    grey_frame frame = {16, 0, 3, 1, sizeof range, range};
    display_params p = display_params_default();
    display_to_gray8(&p, &frame, out);
    CHECK(out[0] == 0 && out[1] == 128 && out[2] == 255, "no window: own range, got %d %d %d",
          out[0], out[1], out[2]);

    int16_t signed_values[3] = {-1000, 0, 1000};
    grey_frame signed_frame = {16, 1, 3, 1, sizeof signed_values, signed_values};
    p.has_window = 1;
    p.window_center = 0;
    p.window_width = 201;
    display_to_gray8(&p, &signed_frame, out);
    CHECK(out[0] == 0 && out[1] == 128 && out[2] == 255, "signed, window 0/201: %d %d %d",
          out[0], out[1], out[2]);
}

/* A job that holds its worker until the gate opens (or the queue stops). */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int open, running, full;
    work_queue *queue;
} gate;

typedef struct job {
    gate *gate;
    int ran, n_embd;
    work_result result;
} job;

static void run_job(void *p, r2gen_ctx *ctx, void *user)
{
    (void)user;
    job *j = p;
    j->n_embd = r2gen_n_embd(ctx);
    pthread_mutex_lock(&j->gate->lock);
    j->gate->running++;
    pthread_cond_broadcast(&j->gate->changed);
    while (!j->gate->open && !work_queue_stopping(j->gate->queue)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 10 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&j->gate->changed, &j->gate->lock, &until);
    }
    pthread_mutex_unlock(&j->gate->lock);
    j->ran = 1;
}

static void *submit(void *p)
{
    job *j = p;
    j->result = work_queue_run(j->gate->queue, j);
    pthread_mutex_lock(&j->gate->lock);
    j->gate->full += j->result == WORK_FULL;
    pthread_cond_broadcast(&j->gate->changed);
    pthread_mutex_unlock(&j->gate->lock);
    return NULL;
}

/* Wait (at most 10 s) until *value reaches target; 1 when it did. */
static int wait_for(gate *g, const int *value, int target)
{
    time_t deadline = time(NULL) + 10;
    pthread_mutex_lock(&g->lock);
    while (*value < target && time(NULL) < deadline) {
        struct timespec until = {time(NULL) + 1, 0};
        pthread_cond_timedwait(&g->changed, &g->lock, &until);
    }
    int reached = *value >= target;
    pthread_mutex_unlock(&g->lock);
    return reached;
}

/* 1 worker + a queue of 1 admit 2 of 6 simultaneous jobs; the other 4 are refused at once. */
static void test_queue_bounds(r2gen_ctx *model)
{
    enum { N = 6 };
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL};
    char message[256] = "";
    g.queue = work_queue_start(model, 1, 1, run_job, &g, message, sizeof message);
    CHECK(g.queue != NULL, "start: %s", message);
    if (!g.queue) return;
    job jobs[N];
    pthread_t threads[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (job){&g, 0, 0, WORK_STOPPED};
        pthread_create(&threads[i], NULL, submit, &jobs[i]);
    }
    CHECK(wait_for(&g, &g.full, N - 2), "4 refusals while the worker is held");
    CHECK(wait_for(&g, &g.running, 1), "one job running");
    pthread_mutex_lock(&g.lock);
    g.open = 1;
    pthread_cond_broadcast(&g.changed);
    pthread_mutex_unlock(&g.lock);
    int done = 0, ran = 0, forked = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(threads[i], NULL);
        done += jobs[i].result == WORK_DONE;
        ran += jobs[i].ran;
        forked += jobs[i].ran && jobs[i].n_embd == r2gen_n_embd(model);
    }
    CHECK(done == 2 && ran == 2 && forked == 2, "2 jobs ran on the worker's context (%d %d %d)",
          done, ran, forked);
    work_queue_stop(g.queue);
}

static void *stop_queue(void *q)
{
    work_queue_stop(q);
    return NULL;
}

/* Stopping tells the running job, which then ends; later the queue is gone. */
static void test_queue_stop_cancels(r2gen_ctx *model)
{
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL};
    char message[256] = "";
    g.queue = work_queue_start(model, 2, 0, run_job, &g, message, sizeof message);
    CHECK(g.queue != NULL, "start: %s", message);
    if (!g.queue) return;
    job held = {&g, 0, 0, WORK_STOPPED};
    pthread_t submitter, stopper;
    pthread_create(&submitter, NULL, submit, &held);
    CHECK(wait_for(&g, &g.running, 1), "the job started");
    pthread_create(&stopper, NULL, stop_queue, g.queue);
    pthread_join(submitter, NULL);
    pthread_join(stopper, NULL);
    CHECK(held.ran && held.result == WORK_DONE, "the running job saw the stop and ended");
}

int main(int argc, char **argv)
{
    test_display_8bit();
    test_display_16bit_window();
    test_display_16bit_range_and_signed();
    r2gen_ctx *model = NULL;
    if (argc < 2 || r2gen_load(argv[1], NULL, &model) != R2GEN_OK) {
        CHECK(0, "cannot load the model: %s", r2gen_last_error(NULL));
        return check_summary();
    }
    test_queue_bounds(model);
    test_queue_stop_cancels(model);
    r2gen_free(model);
    return check_summary();
}
