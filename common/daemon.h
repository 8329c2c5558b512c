/* SPDX-License-Identifier: MIT */
/* Small pieces both daemons' main functions share: signal set-up, waiting
 * for a stop signal, random identities and the loopback check. */
#ifndef GODWIT_DAEMON_H
#define GODWIT_DAEMON_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* Blocks SIGINT, SIGTERM, SIGUSR1, SIGUSR2 and SIGHUP in the calling thread (call
 * before starting threads, so they inherit the mask) and ignores SIGPIPE. */
void daemon_block_signals(void);

struct logger;

/* A daemon's start after its options: LOG set up for PROGRAM with the
 * (already validated) log format name, and the signals blocked. */
void daemon_start(struct logger *log, const char *program, const char *log_format);

/* Waits for one of the blocked signals and returns its number. */
int daemon_wait_signal(void);

/* As daemon_wait_signal, for at most MS milliseconds: 0 if none came. */
int daemon_wait_signal_ms(int ms);

/* Fills HEX (2 * BYTES + 1 chars) with random bytes in hex; -1 on error. */
int daemon_random_id(char *hex, size_t bytes);

/* True if ADDR ("host:port", "[v6]:port", "unix:path") stays on this host. */
bool daemon_address_is_local(const char *addr);

#endif
