/* SPDX-License-Identifier: MIT */
/* Helpers for tests that start real godwit processes: temp dirs, spawning
 * and stopping daemons, waiting for their ready events, and a CHECK macro. */
#ifndef GODWIT_TESTLIB_H
#define GODWIT_TESTLIB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

/* Fails the test with file:line and a message. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* Exits 77 (ctest: skipped) with a reason. */
void test_skip(const char *why) __attribute__((noreturn));

/* Makes a fresh directory under $TMPDIR (or /tmp); returns a static-lifetime
 * string owned by the caller (free it). Removed by test_cleanup_dir. */
char *test_make_dir(const char *name);
void test_cleanup_dir(const char *dir);

/* Path of a built program: $GODWIT_BIN/<subdir>/<name>, e.g.
 * test_program("seeder/godwit-seeder"). Caller frees. */
char *test_program(const char *relative);

/* Starts ARGV[0] with stdout and stderr appended to LOG_PATH (or inherited
 * if NULL); the child dies with the test (PR_SET_PDEATHSIG). */
pid_t test_spawn(char *const argv[], const char *log_path);

/* SIGTERM, then waits up to TIMEOUT_MS (SIGKILL after); returns the exit
 * status as from waitpid's WEXITSTATUS, or 128+signal. */
int test_stop(pid_t pid, int timeout_ms);

/* SIGKILL and reap. */
void test_kill(pid_t pid);

/* Waits until PATH exists (e.g. a unix socket), or TIMEOUT_MS passes. */
bool test_wait_for_path(const char *path, int timeout_ms);

/* Waits until a line of LOG_PATH contains TEXT (e.g. what a daemon logs
 * once it has acted on a signal), or TIMEOUT_MS passes. */
bool test_wait_for_log(const char *log_path, const char *text, int timeout_ms);

/* Starts ARGV as test_spawn does (output appended to LOG_PATH, which must
 * not be NULL) and waits for the JSON line {"event":"ready",...} it prints
 * once it listens (daemons need --log-format json). Stores the pid in *PID
 * and returns the event (json_decref it). Fails the test if the process
 * exits first or TIMEOUT_MS passes. Tests never pick ports: they start
 * daemons on port 0 and read the bound port from this event. */
json_t *test_spawn_ready(char *const argv[], const char *log_path, pid_t *pid, int timeout_ms);

/* The integer field NAME of EVENT (e.g. "port"); fails the test if absent. */
int test_event_int(const json_t *event, const char *name);

/* Fills BUF with deterministic pseudo-random bytes from SEED. */
void test_fill_random(void *buf, size_t len, uint64_t seed);

/* Writes LEN pseudo-random bytes to a new file PATH. */
void test_write_random_file(const char *path, uint64_t len, uint64_t seed);

/* Monotonic time in microseconds. */
uint64_t test_now_us(void);

#endif
