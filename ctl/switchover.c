/* SPDX-License-Identifier: MIT */
/* switchover: the whole hand-over in one command, as an operator runs it
 * once the leecher is started: wait until pre-copy has caught up (every
 * chunk local), Leecher.Finalize (freeze the source, open the
 * destination), wait until COMPLETE. A leecher that does not answer yet
 * is asked again, so it may be started together with the leecher. Safe
 * to run again: a migration finalized already goes straight to the last
 * wait (Finalize is idempotent and answers the downtime it measured). One
 * --timeout bounds the whole (default 600 s); the Finalize call gets at
 * most 60 s of it, as `finalize` does. Text: one line per step as it
 * ends; --json: one object at the end with each step's time. */
#include "ctl.h"

#include <inttypes.h>
#include <stdio.h>

enum { DEFAULT_TIMEOUT_S = 600, FINALIZE_TIMEOUT_MS = 60000 };

/* When each step ended, in seconds since the command started. */
struct steps {
    double local_s, finalized_s, complete_s;
    uint64_t downtime_us, dirty_chunks;
};

/* Waits for GOAL; 0, or 1 after the sentence saying why not. */
static int wait_step(const struct ctl *ctl, enum ctl_goal goal, double deadline, double timeout_s,
                     Godwit__V1__StatusResponse **last)
{
    char why[256];
    if (ctl_wait_until(ctl, goal, deadline, last, why, sizeof why) == 0)
        return 0;
    ctl_report_miss(*last, goal, timeout_s, why);
    return 1;
}

/* The Finalize call within what is left of DEADLINE; 0 or 1. */
static int finalize_step(const struct ctl *ctl, double deadline, struct steps *t, double start)
{
    double left_ms = (deadline - ctl_now_s()) * 1000;
    int timeout_ms = left_ms < 1                     ? 1
                     : left_ms < FINALIZE_TIMEOUT_MS ? (int)left_ms
                                                     : FINALIZE_TIMEOUT_MS;
    Godwit__V1__LeecherFinalizeResponse *r = ctl_finalize_call(ctl, timeout_ms);
    if (!r)
        return 1;
    t->finalized_s = ctl_now_s() - start;
    t->downtime_us = r->downtime_us;
    t->dirty_chunks = r->dirty_chunks;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return 0;
}

static void print_json(const struct steps *t)
{
    printf("{\"state\":\"COMPLETE\",\"local_s\":%.6f,\"finalized_s\":%.6f,\"complete_s\":%.6f,"
           "\"finalize_ms\":%.3f,\"downtime_us\":%" PRIu64 ",\"dirty_chunks\":%" PRIu64 "}\n",
           t->local_s, t->finalized_s, t->complete_s, (t->finalized_s - t->local_s) * 1000,
           t->downtime_us, t->dirty_chunks);
}

int ctl_switchover(const struct ctl *ctl)
{
    double timeout_s = ctl->timeout_given ? ctl->timeout_s : DEFAULT_TIMEOUT_S;
    double start = ctl_now_s(), deadline = start + timeout_s;
    struct steps t = {0};
    Godwit__V1__StatusResponse *last = NULL;
    int r = wait_step(ctl, CTL_GOAL_FINALIZABLE, deadline, timeout_s, &last);
    if (!r) {
        t.local_s = ctl_now_s() - start;
        if (!ctl->json)
            printf("pre-copy caught up after %.3f s: %" PRIu64 " / %" PRIu64 " chunks local\n",
                   t.local_s, last->chunks_local, last->chunks_total);
        fflush(stdout);
        r = finalize_step(ctl, deadline, &t, start);
    }
    if (!r && !ctl->json)
        printf("finalized after %.1f ms: downtime %.2f ms, %" PRIu64 " dirty chunks\n",
               (t.finalized_s - t.local_s) * 1000, (double)t.downtime_us / 1000, t.dirty_chunks);
    fflush(stdout);
    if (!r)
        r = wait_step(ctl, CTL_GOAL_COMPLETE, deadline, timeout_s, &last);
    if (!r) {
        t.complete_s = ctl_now_s() - start;
        if (ctl->json)
            print_json(&t);
        else
            printf("complete after %.3f s: every chunk of %" PRIu64 " is local\n", t.complete_s,
                   last->chunks_total);
    }
    if (last)
        protobuf_c_message_free_unpacked(&last->base, NULL);
    return r;
}
