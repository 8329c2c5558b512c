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

/* One poll: 0 reached, 1 missed for good, -1 go on. */
static int poll_once(const struct ctl *ctl, bool complete, double start, double timeout_s)
{
    char why[256];
    double left = timeout_s - (ctl_now_s() - start);
    Godwit__V1__StatusResponse *s =
        ctl_try_status(ctl, left > 5 ? 5000 : (int)(left * 1000) + 1, why, sizeof why);
    bool late = ctl_now_s() - start >= timeout_s;
    if (!s) {
        if (late)
            fprintf(stderr, "godwit-ctl: Status failed: %s\n", why);
        return late ? 1 : -1;
    }
    bool done = reached(s, complete);
    int r = -1;
    if (done || late || s->state == GODWIT__V1__STATE__FAILED) {
        r = ctl_print_status(s, ctl->json, ctl_now_s() - start);
        if (!done)
            r = report_miss(s, complete, timeout_s);
    }
    protobuf_c_message_free_unpacked(&s->base, NULL);
    return r;
}

int ctl_wait(const struct ctl *ctl, bool complete)
{
    double timeout_s = ctl->timeout_given ? ctl->timeout_s : DEFAULT_TIMEOUT_S;
    double start = ctl_now_s();
    int r;
    while ((r = poll_once(ctl, complete, start, timeout_s)) < 0)
        usleep(POLL_US);
    return r;
}
