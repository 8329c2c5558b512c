/* SPDX-License-Identifier: MIT */
/* The helpers every part of the leecher shares: the clock, waiting for a
 * change of struct leecher, sleeping, and failing the migration. */
#include "leecher.h"

#include "log.h"
#include "rpc-server.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

uint64_t leecher_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void leecher_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

void leecher_wait(struct leecher *l, uint64_t us)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(us / 1000000);
    until.tv_nsec += (long)(us % 1000000) * 1000;
    if (until.tv_nsec >= 1000000000)
        until.tv_sec++, until.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&l->changed, &l->lock, &until);
}

void leecher_fail(struct leecher *l, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&l->lock);
    bool first = l->state != FAILED;
    if (first) {
        l->state = FAILED;
        snprintf(l->error, sizeof l->error, "%s", message);
    }
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
    if (first) {
        if (l->control)
            rpc_server_set_serving(l->control, false); /* probes see it at once */
        log_event(l->log, "error", json_pack("{s:s}", "error", message));
        kill(getpid(), SIGTERM); /* main stops everything and exits non-zero */
    }
}
