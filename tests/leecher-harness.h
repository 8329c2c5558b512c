/* SPDX-License-Identifier: MIT */
/* Test harness for the leecher: start a real godwit-leecher against a
 * seeder_proc, drive its control API and reach its NBD export. */
#ifndef GODWIT_TEST_LEECHER_HARNESS_H
#define GODWIT_TEST_LEECHER_HARNESS_H

#include "godwit/v1/leecher.pb-c.h"
#include "seeder-harness.h"

struct leecher_proc {
    char image[600], socket[600], log[600], control[64];
    pid_t pid;
    struct rpc_channel *channel;
};

/* Starts a leecher pulling from S into S->dir/dest.img with EXTRA flags. */
void leecher_start(struct leecher_proc *l, struct seeder_proc *s, const char *const *extra);
/* The same, dialling RELAY (a link emulator's address) instead of S. */
void leecher_start_via(struct leecher_proc *l, struct seeder_proc *s, const char *relay,
                       const char *const *extra);
/* The same into S->dir/NAME.img (NAME.sock, NAME.log): several leechers
 * on one seeder. */
void leecher_start_named(struct leecher_proc *l, struct seeder_proc *s, const char *name,
                         const char *const *extra);
/* SIGTERM; returns the exit status. */
int leecher_stop(struct leecher_proc *l);
/* Waits for the process to exit by itself; returns its status. */
int leecher_wait_exit(struct leecher_proc *l, int timeout_ms);

/* Leecher.Status (the caller frees); NULL if the call failed. */
Godwit__V1__StatusResponse *leecher_status(struct leecher_proc *l);
/* Waits until Status reports STATE (or FAILED), returns the last status. */
Godwit__V1__StatusResponse *leecher_wait_state(struct leecher_proc *l, Godwit__V1__State state,
                                               int timeout_ms);
/* Waits until at least CHUNKS chunks are local. */
void leecher_wait_local(struct leecher_proc *l, uint64_t chunks, int timeout_ms);
/* grpc.health.v1.Health/Check on the control port: true if SERVING. */
bool leecher_serving(struct leecher_proc *l);
/* Leecher.Finalize; returns the status code and the downtime. */
grpc_status_code leecher_finalize_call(struct leecher_proc *l, uint64_t *downtime_us);
/* A libnbd handle on the leecher's export. */
struct nbd_handle *leecher_nbd(struct leecher_proc *l);

/* Starts godwit-linkem on port 0 relaying to TARGET, capped at RATE MB/s
 * ("0": no cap) with RTT_MS round trip, logging to DIR/linkem.log; writes
 * its "127.0.0.1:PORT" to RELAY (64 bytes) and returns its pid. */
pid_t linkem_start(const char *target, const char *rate, const char *rtt_ms, const char *dir,
                   char *relay);
/* The same with godwit-linkem's own FLAGS (NULL-terminated), e.g.
 * {"--rate-mbps", "6", "--shared-rate", NULL}. */
pid_t linkem_start_with(const char *target, const char *const *flags, const char *dir, char *relay);

#endif
