/* SPDX-License-Identifier: MIT */
/* godwit-ctl's parts: the parsed command line (main.c), the calls to the
 * daemons (call.c), Status as text or JSON (status.c), and the commands
 * that poll it (watch.c, wait.c) or change the migration (operate.c). */
#ifndef GODWIT_CTL_H
#define GODWIT_CTL_H

#include "godwit/v1/leecher.pb-c.h"
#include "rpc-client.h"

#include <stdbool.h>

/* What the command line asked for, after main.c checked it. */
struct ctl {
    struct rpc_channel *channel; /* to --control or --seeder */
    bool json;                   /* --json: one JSON object instead of text */
    bool timeout_given;          /* --timeout S was given */
    unsigned timeout_s;          /* ... and its value (at most a day: main.c) */
    unsigned interval_ms;        /* watch --interval */
};

/* call.c */
/* Opens CTL->channel to TARGET with the TLS files (any may be NULL); -1
 * with one sentence in ERR. */
int ctl_connect(struct ctl *ctl, const char *target, const struct rpc_tls *tls, char *err,
                size_t errlen);
/* DEFAULT_MS, or --timeout S in milliseconds when it was given. */
int ctl_timeout_ms(const struct ctl *ctl, int default_ms);
/* Calls METHOD within TIMEOUT_MS; on failure prints "godwit-ctl: WHAT failed: ..." and
 * returns NULL. Free the reply with protobuf_c_message_free_unpacked. */
ProtobufCMessage *ctl_call(const struct ctl *ctl, const char *method, const char *what,
                           const ProtobufCMessage *request,
                           const ProtobufCMessageDescriptor *reply_type, int timeout_ms);
/* Leecher.Status within TIMEOUT_MS; NULL (and a printed sentence) on failure. */
Godwit__V1__StatusResponse *ctl_status(const struct ctl *ctl, int timeout_ms);
/* The same without printing: the reason is in WHY. */
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

/* The commands; each returns the exit status (0 done, 1 failed). */
int ctl_status_command(const struct ctl *ctl);
int ctl_watch(const struct ctl *ctl);
int ctl_wait(const struct ctl *ctl, bool complete);
int ctl_finalize(const struct ctl *ctl);
int ctl_seeder_info(const struct ctl *ctl);
int ctl_seeder_abort(const struct ctl *ctl);

#endif
