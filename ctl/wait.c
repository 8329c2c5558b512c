/* SPDX-License-Identifier: MIT */
/* wait local|complete: polls Status until pre-copy has caught up (every
 * chunk local) or the migration is COMPLETE, then prints the last Status.
 * A leecher that does not answer yet is asked again. Exit 1 with one
 * sentence if the migration FAILED or --timeout passed first. The polling
 * itself (ctl_wait_until) is shared with switchover. */
#include "ctl.h"

#include <stdio.h>
#include <unistd.h>

enum { POLL_US = 5000, DEFAULT_TIMEOUT_S = 600 };

static bool reached(const Godwit__V1__StatusResponse *s, enum ctl_goal goal)
{
    switch (goal) {
    case CTL_GOAL_LOCAL:
        return s->chunks_local == s->chunks_total;
    case CTL_GOAL_FINALIZABLE: /* caught up, or finalized already */
        return s->chunks_local == s->chunks_total || s->state == GODWIT__V1__STATE__POSTCOPY ||
               s->state == GODWIT__V1__STATE__COMPLETE;
    case CTL_GOAL_COMPLETE:
        return s->state == GODWIT__V1__STATE__COMPLETE;
    }
    return false;
}

void ctl_report_miss(const Godwit__V1__StatusResponse *s, enum ctl_goal goal, double timeout_s,
                     const char *why)
{
    if (!s)
        fprintf(stderr, "godwit-ctl: Status failed: %s\n", why);
    else if (s->state == GODWIT__V1__STATE__FAILED)
        fprintf(stderr, "godwit-ctl: the migration failed: %s\n", s->error);
    else
        fprintf(stderr, "godwit-ctl: the migration was not %s after %.0f s (--timeout)\n",
                goal == CTL_GOAL_COMPLETE ? "complete" : "local", timeout_s);
}

/* One poll: 0 reached, 1 missed for good, -1 go on. *LAST keeps the last
 * Status that answered: a call cut short by the deadline (a slow machine)
 * ends the wait with it, as one that answered late would. */
static int poll_once(const struct ctl *ctl, enum ctl_goal goal, double deadline,
                     Godwit__V1__StatusResponse **last, char *why, size_t whylen)
{
    double left = deadline - ctl_now_s();
    Godwit__V1__StatusResponse *s =
        ctl_try_status(ctl, left > 5 ? 5000 : (int)(left * 1000) + 1, why, whylen);
    bool late = ctl_now_s() >= deadline;
    if (s) {
        if (*last)
            protobuf_c_message_free_unpacked(&(*last)->base, NULL);
        *last = s;
    }
    if (s && reached(s, goal))
        return 0;
    if (late || (s && s->state == GODWIT__V1__STATE__FAILED))
        return 1;
    return -1;
}

int ctl_wait_until(const struct ctl *ctl, enum ctl_goal goal, double deadline,
                   Godwit__V1__StatusResponse **last, char *why, size_t whylen)
{
    int r;
    why[0] = 0;
    while ((r = poll_once(ctl, goal, deadline, last, why, whylen)) < 0)
        usleep(POLL_US);
    return r;
}

int ctl_wait(const struct ctl *ctl, bool complete)
{
    double timeout_s = ctl->timeout_given ? ctl->timeout_s : DEFAULT_TIMEOUT_S;
    double start = ctl_now_s();
    enum ctl_goal goal = complete ? CTL_GOAL_COMPLETE : CTL_GOAL_LOCAL;
    Godwit__V1__StatusResponse *last = NULL;
    char why[256];
    int missed = ctl_wait_until(ctl, goal, start + timeout_s, &last, why, sizeof why);
    int printed = last ? ctl_print_status(last, ctl->json, ctl_now_s() - start) : 0;
    if (missed)
        ctl_report_miss(last, goal, timeout_s, why);
    if (last)
        protobuf_c_message_free_unpacked(&last->base, NULL);
    return missed || printed ? 1 : 0;
}
