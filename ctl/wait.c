/* SPDX-License-Identifier: MIT */
/* wait local|complete: polls Status until pre-copy has caught up (every
 * chunk local) or the migration is COMPLETE, then prints the last Status.
 * A leecher that does not answer yet is asked again. Exit 1 with one
 * sentence if the migration FAILED or --timeout passed first. */
#include "ctl.h"

#include <stdio.h>
#include <unistd.h>

enum { POLL_US = 5000, DEFAULT_TIMEOUT_S = 600 };

static bool reached(const Godwit__V1__StatusResponse *s, bool complete)
{
    return complete ? s->state == GODWIT__V1__STATE__COMPLETE : s->chunks_local == s->chunks_total;
}

/* Prints why the wait ended without reaching its goal; 1. */
static int report_miss(const Godwit__V1__StatusResponse *s, bool complete, double timeout_s)
{
    if (s->state == GODWIT__V1__STATE__FAILED)
        fprintf(stderr, "godwit-ctl: the migration failed: %s\n", s->error);
    else
        fprintf(stderr, "godwit-ctl: the migration was not %s after %.0f s (--timeout)\n",
                complete ? "complete" : "local", timeout_s);
    return 1;
}

/* The wait is over without reaching its goal: prints the last Status
 * that answered and why (or why Status did not answer at all); 1. */
static int end_missed(const struct ctl *ctl, const Godwit__V1__StatusResponse *last, bool complete,
                      double start, double timeout_s, const char *why)
{
    if (!last) {
        fprintf(stderr, "godwit-ctl: Status failed: %s\n", why);
        return 1;
    }
    ctl_print_status(last, ctl->json, ctl_now_s() - start);
    return report_miss(last, complete, timeout_s);
}

/* One poll: 0 reached, 1 missed for good, -1 go on. *LAST keeps the last
 * Status that answered: a call cut short by the end of --timeout (a slow
 * machine) ends the wait with it, as one that answered late would. */
static int poll_once(const struct ctl *ctl, bool complete, double start, double timeout_s,
                     Godwit__V1__StatusResponse **last)
{
    char why[256];
    double left = timeout_s - (ctl_now_s() - start);
    Godwit__V1__StatusResponse *s =
        ctl_try_status(ctl, left > 5 ? 5000 : (int)(left * 1000) + 1, why, sizeof why);
    bool late = ctl_now_s() - start >= timeout_s;
    if (s) {
        if (*last)
            protobuf_c_message_free_unpacked(&(*last)->base, NULL);
        *last = s;
    }
    if (!s)
        return late ? end_missed(ctl, *last, complete, start, timeout_s, why) : -1;
    if (reached(s, complete))
        return ctl_print_status(s, ctl->json, ctl_now_s() - start);
    if (late || s->state == GODWIT__V1__STATE__FAILED)
        return end_missed(ctl, s, complete, start, timeout_s, why);
    return -1;
}

int ctl_wait(const struct ctl *ctl, bool complete)
{
    double timeout_s = ctl->timeout_given ? ctl->timeout_s : DEFAULT_TIMEOUT_S;
    double start = ctl_now_s();
    Godwit__V1__StatusResponse *last = NULL;
    int r;
    while ((r = poll_once(ctl, complete, start, timeout_s, &last)) < 0)
        usleep(POLL_US);
    if (last)
        protobuf_c_message_free_unpacked(&last->base, NULL);
    return r;
}
