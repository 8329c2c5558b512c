/* SPDX-License-Identifier: MIT */
/* The gate every write of the local app passes: open (the write runs), or
 * closed by the freeze, which either holds the write (it waits, in arrival
 * order, until the gate opens again) or refuses it (EPERM; ESHUTDOWN at
 * exit). Held writes are capped in count and bytes; beyond the cap a write
 * is refused with EPERM and the first refusal of each freeze is logged. */
#ifndef GODWIT_SEEDER_WRITE_GATE_H
#define GODWIT_SEEDER_WRITE_GATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct logger;

enum gate_mode {
    GATE_OPEN,     /* writes run */
    GATE_HOLD,     /* writes wait for the gate to open (the freeze as a pause) */
    GATE_REFUSE,   /* writes fail with EPERM (--freeze fail, or after Complete) */
    GATE_SHUTDOWN, /* writes fail with ESHUTDOWN: the seeder is exiting */
};

struct gate_limits {
    uint64_t max_held;       /* writes held at once */
    uint64_t max_held_bytes; /* their payload bytes */
};

/* Counters for Info and metrics; a snapshot. */
struct gate_stats {
    uint64_t held_now, held_bytes_now; /* waiting at the gate now */
    uint64_t held_total;               /* writes ever held (and later applied or failed) */
    uint64_t refused_total;            /* writes refused while closed (cap, fail mode, Complete) */
};

/* Lock order: rw (shared by each running write, exclusive by gate_set_mode)
 * before lock. Never take rw while holding lock. */
struct write_gate {
    pthread_rwlock_t rw;
    _Atomic int mode;          /* enum gate_mode; changed under rw exclusive */
    _Atomic bool queue_busy;   /* tickets are waiting (next_ticket != turn) */
    struct gate_limits limits; /* set at init, read-only */
    struct logger *log;

    /* Everything below is owned by lock. */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* mode or turn changed */
    uint64_t next_ticket;   /* given to the next write that must wait */
    uint64_t turn;          /* the ticket that may run now */
    uint64_t held, held_bytes;
    uint64_t held_total, refused_total;
    bool cap_logged; /* the cap was hit during this closing */
};

/* What gate_enter hands to gate_leave. */
struct gate_pass {
    bool ticketed; /* ran in ticket order: leaving lets the next one run */
};

int gate_init(struct write_gate *gate, const struct gate_limits *limits, struct logger *log);
void gate_destroy(struct write_gate *gate);

/* Waits until a write of COUNT bytes may run; 0 with PASS filled (the
 * caller writes, then calls gate_leave), or -1 with errno EPERM or
 * ESHUTDOWN. Writes that had to wait run one at a time in arrival order,
 * and a write arriving while they drain waits behind them. */
int gate_enter(struct write_gate *gate, uint64_t count, struct gate_pass *pass);
void gate_leave(struct write_gate *gate, const struct gate_pass *pass);

/* Waits for every running write to leave, then sets MODE. Opening lets the
 * held writes run in order; refusing or shutting fails them all. */
void gate_set_mode(struct write_gate *gate, enum gate_mode mode);
enum gate_mode gate_mode(struct write_gate *gate);

/* Waits for every running write to leave and keeps new ones out until
 * gate_unlock_all (to change what writes touch, e.g. the session list). */
void gate_lock_all(struct write_gate *gate);
void gate_unlock_all(struct write_gate *gate);

void gate_stats(struct write_gate *gate, struct gate_stats *stats);

#endif
