/* SPDX-License-Identifier: MIT */
/* The write gate. The fast path is one shared rwlock acquisition and two
 * atomic loads; only a write that meets a closed gate (or a queue of held
 * writes still draining) takes the mutex, draws a ticket and waits. Tickets
 * run strictly in order, so held writes land in the order they arrived and
 * none overtakes another. */
#include "write-gate.h"

#include "cleanup.h"
#include "log.h"

#include <errno.h>

int gate_init(struct write_gate *gate, const struct gate_limits *limits, struct logger *log)
{
    *gate = (struct write_gate){.limits = *limits, .log = log};
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int err = pthread_rwlock_init(&gate->rw, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (err || (err = pthread_mutex_init(&gate->lock, NULL)) != 0 ||
        (err = pthread_cond_init(&gate->changed, NULL)) != 0) {
        errno = err;
        return -1;
    }
    atomic_init(&gate->mode, GATE_OPEN);
    atomic_init(&gate->queue_busy, false);
    return 0;
}

void gate_destroy(struct write_gate *gate)
{
    pthread_rwlock_destroy(&gate->rw);
    pthread_mutex_destroy(&gate->lock);
    pthread_cond_destroy(&gate->changed);
}

/* Under lock: may one more write of COUNT bytes be held? Logs the first
 * refusal of a closing. */
static bool room_to_hold(struct write_gate *gate, uint64_t count)
{
    if (gate->held < gate->limits.max_held &&
        gate->held_bytes + count <= gate->limits.max_held_bytes)
        return true;
    if (!gate->cap_logged)
        log_warn(gate->log,
                 "the freeze holds %llu writes (%llu bytes), its cap (--freeze-max-held %llu, "
                 "--freeze-max-held-bytes %llu): further source writes fail with EPERM",
                 (unsigned long long)gate->held, (unsigned long long)gate->held_bytes,
                 (unsigned long long)gate->limits.max_held,
                 (unsigned long long)gate->limits.max_held_bytes);
    gate->cap_logged = true;
    return false;
}

/* Under lock: the ticket holder leaves the queue (ran or failed). */
static void leave_queue(struct write_gate *gate, bool counted, uint64_t count)
{
    if (counted) {
        gate->held--;
        gate->held_bytes -= count;
    }
}

/* Takes rw shared if the gate is open; true if so. */
static bool enter_open(struct write_gate *gate)
{
    pthread_rwlock_rdlock(&gate->rw);
    if (atomic_load(&gate->mode) == GATE_OPEN)
        return true;
    pthread_rwlock_unlock(&gate->rw);
    return false;
}

/* The slow path: waits in ticket order. */
static int enter_in_turn(struct write_gate *gate, uint64_t count, struct gate_pass *pass)
{
    bool ticketed = false, counted = false;
    uint64_t ticket = 0;
    pthread_mutex_lock(&gate->lock);
    for (;;) {
        int mode = atomic_load(&gate->mode);
        if (mode == GATE_REFUSE || mode == GATE_SHUTDOWN) {
            leave_queue(gate, counted, count);
            gate->refused_total++;
            pthread_mutex_unlock(&gate->lock);
            errno = mode == GATE_REFUSE ? EPERM : ESHUTDOWN;
            return -1;
        }
        if (mode == GATE_HOLD && !counted) {
            /* A write already in the queue (it arrived while held writes
             * drained) stays in it: dropping its ticket would stall the
             * ones behind it. So only a newcomer is refused at the cap. */
            if (!ticketed && !room_to_hold(gate, count)) {
                gate->refused_total++;
                pthread_mutex_unlock(&gate->lock);
                errno = EPERM;
                return -1;
            }
            counted = true;
            gate->held++, gate->held_bytes += count, gate->held_total++;
        }
        if (!ticketed && (mode == GATE_HOLD || atomic_load(&gate->queue_busy))) {
            ticket = gate->next_ticket++;
            ticketed = true;
            atomic_store(&gate->queue_busy, true);
        }
        if (mode == GATE_OPEN && (!ticketed || ticket == gate->turn)) {
            pthread_mutex_unlock(&gate->lock);
            bool open = enter_open(gate); /* rw before lock: never hold lock here */
            pthread_mutex_lock(&gate->lock);
            if (open && (!ticketed || ticket == gate->turn)) {
                if (ticketed)
                    leave_queue(gate, counted, count);
                pthread_mutex_unlock(&gate->lock);
                pass->ticketed = ticketed;
                return 0;
            }
            if (open)
                pthread_rwlock_unlock(&gate->rw);
            continue;
        }
        pthread_cond_wait(&gate->changed, &gate->lock);
    }
}

int gate_enter(struct write_gate *gate, uint64_t count, struct gate_pass *pass)
{
    pass->ticketed = false;
    pthread_rwlock_rdlock(&gate->rw);
    if (atomic_load(&gate->mode) == GATE_OPEN && !atomic_load(&gate->queue_busy))
        return 0;
    pthread_rwlock_unlock(&gate->rw);
    return enter_in_turn(gate, count, pass);
}

void gate_leave(struct write_gate *gate, const struct gate_pass *pass)
{
    pthread_rwlock_unlock(&gate->rw);
    if (!pass->ticketed)
        return;
    LOCK_FOR_SCOPE(&gate->lock);
    gate->turn++;
    atomic_store(&gate->queue_busy, gate->turn != gate->next_ticket);
    pthread_cond_broadcast(&gate->changed);
}

void gate_set_mode(struct write_gate *gate, enum gate_mode mode)
{
    pthread_rwlock_wrlock(&gate->rw);
    pthread_mutex_lock(&gate->lock);
    int before = atomic_exchange(&gate->mode, mode);
    if (mode == GATE_REFUSE || mode == GATE_SHUTDOWN) {
        /* Every waiting ticket fails: the queue is empty from here on. */
        gate->turn = gate->next_ticket;
        atomic_store(&gate->queue_busy, false);
    }
    if (before == GATE_OPEN && mode != GATE_OPEN)
        gate->cap_logged = false; /* a new closing logs its cap once */
    pthread_cond_broadcast(&gate->changed);
    pthread_mutex_unlock(&gate->lock);
    pthread_rwlock_unlock(&gate->rw);
}

enum gate_mode gate_mode(struct write_gate *gate)
{
    return (enum gate_mode)atomic_load(&gate->mode);
}

void gate_lock_all(struct write_gate *gate)
{
    pthread_rwlock_wrlock(&gate->rw);
}

void gate_unlock_all(struct write_gate *gate)
{
    pthread_rwlock_unlock(&gate->rw);
}

void gate_stats(struct write_gate *gate, struct gate_stats *stats)
{
    LOCK_FOR_SCOPE(&gate->lock);
    *stats =
        (struct gate_stats){gate->held, gate->held_bytes, gate->held_total, gate->refused_total};
}
