/* SPDX-License-Identifier: MIT */
/* godwit-ctl's parts: the parsed command line (main.c), the calls to the
 * daemons (call.c), Status as text or JSON (status.c), and the commands
 * that poll it (watch.c, wait.c) or change the migration (operate.c,
 * switchover.c). */
#ifndef GODWIT_CTL_H
#define GODWIT_CTL_H

#include "godwit/v1/leecher.pb-c.h"
#include "rpc-client.h"

#include <stdbool.h>

/* The channel to the daemon and what it was opened with: a poll that
 * finds the daemon unreachable opens it anew (call.c says why). */
struct ctl_conn {
    struct rpc_channel *channel; /* to --control or --seeder */
    struct rpc_channel_config config;
};

/* What the command line asked for, after main.c checked it. */
struct ctl {
    struct ctl_conn *conn; /* ctl_connect's; ctl_disconnect frees it */
    bool json;             /* --json: one JSON object instead of text */
    bool timeout_given;    /* --timeout S was given */
    unsigned timeout_s;    /* ... and its value (at most a day: main.c) */
    unsigned interval_ms;  /* watch --interval */
};

/* call.c */
/* Opens CTL->conn to TARGET with the TLS files (any may be NULL; both
 * must outlive CTL); -1 with one sentence in ERR. */
int ctl_connect(struct ctl *ctl, const char *target, const struct rpc_tls *tls, char *err,
                size_t errlen);
void ctl_disconnect(struct ctl *ctl);
/* DEFAULT_MS, or --timeout S in milliseconds when it was given. */
int ctl_timeout_ms(const struct ctl *ctl, int default_ms);
/* Calls METHOD within TIMEOUT_MS; on failure prints "godwit-ctl: WHAT failed: ..." and
 * returns NULL. Free the reply with protobuf_c_message_free_unpacked. */
ProtobufCMessage *ctl_call(const struct ctl *ctl, const char *method, const char *what,
                           const ProtobufCMessage *request,
                           const ProtobufCMessageDescriptor *reply_type, int timeout_ms);
/* Leecher.Status within TIMEOUT_MS; NULL (and a printed sentence) on failure. */
Godwit__V1__StatusResponse *ctl_status(const struct ctl *ctl, int timeout_ms);
/* The same without printing: the reason is in WHY. A daemon that cannot
 * be reached gets a new channel for the next call. */
Godwit__V1__StatusResponse *ctl_try_status(const struct ctl *ctl, int timeout_ms, char *why,
                                           size_t whylen);
/* Monotonic seconds. */
double ctl_now_s(void);

/* status.c */
const char *ctl_state_name(Godwit__V1__State state);
/* Prints S as the text block or, with JSON, one object (WAITED_S: how
 * long a wait took; left out of the text). 0, or 1 if out of memory. */
int ctl_print_status(const Godwit__V1__StatusResponse *s, bool json, double waited_s);
/* "1.5 MiB" for BYTES into BUF. */
const char *ctl_bytes(double bytes, char *buf, size_t len);

/* wait.c */
/* What a wait waits for: every chunk local (pre-copy caught up), that or
 * finalized already (switchover's first step), or COMPLETE. */
enum ctl_goal { CTL_GOAL_LOCAL, CTL_GOAL_FINALIZABLE, CTL_GOAL_COMPLETE };
/* Polls Status every 5 ms until GOAL (0) or, 1, the migration FAILED or
 * DEADLINE (ctl_now_s) passed. *LAST (NULL at first; the caller frees it)
 * is the last Status that answered; WHY why the last call failed. */
int ctl_wait_until(const struct ctl *ctl, enum ctl_goal goal, double deadline,
                   Godwit__V1__StatusResponse **last, char *why, size_t whylen);
/* Prints the sentence for a wait that ended 1 (LAST NULL: Status never
 * answered, for WHY). */
void ctl_report_miss(const Godwit__V1__StatusResponse *last, enum ctl_goal goal, double timeout_s,
                     const char *why);

/* operate.c */
/* Leecher.Finalize within TIMEOUT_MS; NULL (and a printed sentence) on failure. */
Godwit__V1__LeecherFinalizeResponse *ctl_finalize_call(const struct ctl *ctl, int timeout_ms);

/* The commands; each returns the exit status (0 done, 1 failed). */
int ctl_status_command(const struct ctl *ctl);
int ctl_watch(const struct ctl *ctl);
int ctl_wait(const struct ctl *ctl, bool complete);
int ctl_finalize(const struct ctl *ctl);
int ctl_switchover(const struct ctl *ctl);
int ctl_seeder_info(const struct ctl *ctl);
int ctl_seeder_abort(const struct ctl *ctl);

#endif
