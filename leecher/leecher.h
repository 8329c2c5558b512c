/* SPDX-License-Identifier: MIT */
/* The destination side's shared state: what main wires together and what
 * the pullers, the syncer, the NBD backend and the control service use. */
#ifndef GODWIT_LEECHER_H
#define GODWIT_LEECHER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bulk-budget.h"
#include "chunk-map.h"
#include "chunk.h"
#include "image-file.h"
#include "metrics.h"

struct logger;
struct nbd_backend;
struct pull_order;
struct rpc_server;
struct rpc_service;
struct seeder_client;

/* Values of godwit.v1.State. */
enum leecher_state { PRECOPY = 1, FINALIZING = 2, POSTCOPY = 3, COMPLETE = 4, FAILED = 5 };

/* Values of godwit.v1.VerifyState: the whole-image comparison (--verify). */
enum verify_state {
    VERIFY_OFF = 1,
    VERIFY_PENDING = 2,
    VERIFY_RUNNING = 3,
    VERIFY_PASSED = 4,
    VERIFY_FAILED = 5,
    VERIFY_UNSUPPORTED = 6,
};

struct leecher {
    /* Set up by main before any thread starts; read-only afterwards. */
    struct logger *log;
    struct chunk_geometry geo;
    struct image_file image;
    struct chunk_map *map;
    char image_id[33];
    uint64_t session_id; /* the seeder session: from the state file, then Track */
    uint32_t max_read;
    struct seeder_client *seeder; /* thread-safe */
    struct bulk_budget budget;    /* background bytes in flight: its own lock, a leaf */
    unsigned n_workers;
    uint32_t batch_bytes;   /* largest ReadAt a background pull makes */
    uint64_t max_bandwidth; /* --max-bandwidth, bytes/s; 0: no cap (seeder-client.c enforces it) */
    int sync_interval_ms;
    bool final_sync;            /* Sync once more right before the freeze */
    int auto_finalize_ms;       /* finalize at this predicted downtime; 0: never by itself */
    unsigned converge_rounds;   /* Sync rounds without progress before not_converging */
    int pull_timeout_ms;        /* post-copy: how long a read waits for a missing chunk */
    bool checksums;             /* ask for and verify ReadAt checksums (the seeder has them) */
    unsigned checksum_retries;  /* re-pulls of a range after a mismatch before failing */
    const char *image_path;     /* --image */
    char *state_path;           /* IMAGE.godwit-state */
    int state_dir_fd;           /* its directory, fsynced after each rename; -1 if none */
    uint64_t image_inode;       /* of the local image file, recorded in the state file */
    struct rpc_server *control; /* set before the threads start: health follows FAILED */
    bool seeder_contacted;      /* leecher_prepare called Info (not a post-copy resume) */
    bool resume_finalize;       /* the seeder was frozen already: finish that Finalize */
    bool session_unrecorded;    /* a fresh Track's session: the syncer records it first */
    uint64_t started_us;

    /* Lock order: finalize_lock -> save_lock -> lock. A Finalize (holding
     * finalize_lock) writes the state file (save_lock), which reads
     * ack_generation (lock); no one takes finalize_lock or save_lock while
     * holding a later lock. The chunk map's stripe locks are leaves: held
     * only around a chunk's store, never with any of these. The bulk
     * budget's and the bandwidth bucket's locks are leaves too: a worker
     * gives back what it did not claim with lock held. */

    /* Held for the whole of a Finalize, so two (SIGUSR1 and the RPC) never
     * interleave. */
    pthread_mutex_t finalize_lock;
    /* Held while the state file is written (it has one temporary name). */
    pthread_mutex_t save_lock;

    /* lock owns everything below up to the atomics; changed is broadcast on
     * every state change and queue push, and on a chunk commit when a
     * thread waits for one (chunk_waiters) or every chunk is local. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    enum leecher_state state;
    char error[256];
    bool gate_open;          /* the export serves requests (after Finalize) */
    bool storage_full;       /* a pull found no space: pulls wait (storage.c) */
    bool bulk_paused;        /* a Finalize is under way: no new background pull starts */
    bool finalize_recording; /* a Finalize writes its record after the freeze: COMPLETE,
                                and the flush that follows it, wait for that */
    bool stopping;
    unsigned chunk_waiters; /* reads waiting for a chunk another thread pulls */
    uint64_t downtime_us;
    uint64_t freeze_started_us;   /* the first Finalize attempt (downtime counts from it) */
    uint64_t finalize_dirty;      /* chunks the freeze reported */
    uint64_t ack_generation;      /* last Sync set recorded in the state file */
    struct pull_order *order;     /* what workers pull next (opened by main) */
    double dirty_rate;            /* chunks/s re-dirtied, recent Syncs */
    uint64_t source_dirty;        /* what Finalize would transfer now (Seeder.Info) */
    uint64_t round_trip_us;       /* the last Seeder.Info after a Sync; 0 before one */
    double finalize_predicted_ms; /* the prediction when the freeze began */
    bool not_converging;          /* pre-copy stalled for converge_rounds (convergence.c) */
    unsigned stalled_rounds;      /* Sync rounds in a row without progress */
    char convergence_hint[256];   /* what would help, while not_converging */
    enum verify_state verify;     /* --verify: set by main, then moved by the monitor */
    uint64_t verify_us;           /* how long the last comparison took */

    /* The state file's view: a bit per chunk it records as local (written
     * under save_lock, read by any thread), and whether a destination
     * write made a chunk local that it does not record yet. */
    _Atomic uint64_t *saved_local;
    _Atomic bool unsaved_writes;
    /* Each chunk's chunk-map word when the last successful flush of the
     * image began (state-file.c; owned by save_lock). */
    uint32_t *flushed_words;

    /* Statistics: atomics, any thread. */
    _Atomic uint64_t bytes_pulled;  /* ReadAt replies as received (on the wire) */
    _Atomic uint64_t bytes_decoded; /* their data once decoded (compressed replies larger) */
    _Atomic uint64_t chunks_redirtied;
    _Atomic uint64_t chunk_pull_ns;   /* EWMA of a ReadAt's time per chunk; 0 before one */
    _Atomic uint64_t on_demand_bytes; /* the ranges reads and writes of the export pulled */

    /* Statistics for /metrics: relaxed atomics, any thread (histogram
     * buckets set by leecher_metrics_init before the threads start). */
    struct metric_counter pulled_chunks;       /* chunks ReadAt brought, committed or not */
    struct metric_counter pull_retries;        /* failed pulls that were tried again */
    struct metric_counter sync_rounds;         /* Syncs the seeder answered */
    struct metric_counter checksum_mismatches; /* ReadAt replies refused: bad checksum */
    struct metric_counter verify_mismatches;   /* chunks --verify found differing */
    struct metric_gauge pull_throughput;       /* bytes/s over the last second (the monitor) */
    struct metric_histogram pull_us;           /* one successful ReadAt pull, call to commit */
    struct metric_histogram on_demand_us;      /* a read's wait for a chunk that was missing */
};

/* puller.c: background workers; the pulls of reads someone waits for. */
/* Starts n_workers workers into *THREADS; *STARTED says how many run
 * (join them even when it fails: -1 with errno ENOMEM or pthread's). */
int pullers_start(struct leecher *l, pthread_t **threads, unsigned *started);
void pullers_join(pthread_t *threads, unsigned started);
/* Pulls claimed CHUNK (the span of its stale pages) on the on-demand lane
 * and commits it: 0; else -1 with a sentence in WHY (the claim is still
 * held: release it). */
int leecher_pull_chunk(struct leecher *l, uint64_t chunk, uint32_t ticket, char *why,
                       size_t whylen);
/* Pulls [FROM, TO) (whole pages of the COUNT chunks from FIRST, none of
 * them local, SEEN their words before) with one ReadAt on the on-demand
 * lane and commits each chunk's part as its pages (chunk_map_commit_pages):
 * 0 all stored, 1 some dropped (their chunk changed), -1 with a sentence
 * in WHY. */
int leecher_pull_pages(struct leecher *l, uint64_t first, unsigned count, const uint32_t *seen,
                       uint64_t from, uint64_t to, char *why, size_t whylen);

/* on-demand.c: what a read or write of the export waits for. */
/* Makes CHUNK local (pulling it now if needed) or fails with EIO after the
 * pull timeout; ESHUTDOWN when stopping. */
int leecher_ensure_local(struct leecher *l, uint64_t chunk);
/* Makes the pages that [OFFSET, OFFSET+COUNT) touches current on disk:
 * nothing if they are, else a pull of only those pages (one ReadAt for all
 * its chunks when they are all remote; the rest of each chunk is queued
 * first for the workers), or of a whole chunk when they are all it lacks;
 * waits for a pull of a chunk already under way. Fails as
 * leecher_ensure_local. */
int leecher_ensure_range(struct leecher *l, uint64_t offset, uint32_t count);

/* leecher.c: what every part shares. */
uint64_t leecher_now_us(void);
void leecher_sleep_ms(int ms);
/* Waits on leecher->changed (lock held) for at most US microseconds. */
void leecher_wait(struct leecher *l, uint64_t us);
/* Enters FAILED with MESSAGE (the first failure wins), logs the error
 * event and makes main stop (SIGTERM). Takes leecher->lock. */
void leecher_fail(struct leecher *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* migration.c: the syncer, Finalize, the monitor (progress, COMPLETE). */
void *syncer_thread(void *arg);
void *monitor_thread(void *arg);
/* Runs Finalize; -1 with ERR and errno EAGAIN (the seeder could not be
 * reached: retry) or EBUSY (the migration has failed). */
int leecher_finalize(struct leecher *l, char *err, size_t errlen);
/* What a Finalize now would cost, from SOURCE_DIRTY chunks and ROUND_TRIP_US
 * (both read under lock by the caller) and the measured pull time. */
double leecher_predict_downtime_ms(const struct leecher *l, uint64_t source_dirty,
                                   uint64_t round_trip_us);

/* convergence.c: whether pre-copy catches up with the source. The
 * syncer's own record (no lock: only the syncer thread touches it). */
struct convergence {
    uint64_t best;         /* fewest chunks lacking after a round so far */
    uint64_t previous_set; /* the previous round's Sync set */
};
void convergence_init(struct convergence *c);
/* After a Sync round that marked SYNC_SET chunks remote: updates the
 * stalled count, and emits not_converging or converging when that
 * changes. Takes leecher->lock. */
void convergence_note_round(struct leecher *l, struct convergence *c, uint64_t sync_set);
/* verify.c: --verify, at the end of post-copy (the monitor, every chunk
 * local, nothing held). Compares each chunk of the local image that the
 * destination app did not write with the seeder's Digest of its frozen
 * image, both sides hashing at once. Sets verify: PASSED, UNSUPPORTED (the
 * seeder has no Digest), FAILED (after leecher_fail), or PENDING again if
 * the seeder could not be reached (call again later). */
void leecher_verify(struct leecher *l);

/* metrics.c: the leecher's /metrics. Init before any thread starts; start
 * on ADDRESS (HOST:PORT, checked) once the image is prepared, the bound
 * port in *PORT; NULL with one sentence in ERR. */
void leecher_metrics_init(struct leecher *l);
struct metrics_server *leecher_metrics_start(struct leecher *l, const char *address, int *port,
                                             char *err, size_t errlen);

/* state-file.c: crash-safe record of the phase and of which chunks are local. */
struct state_summary {
    enum leecher_state phase; /* PRECOPY, POSTCOPY or COMPLETE */
    uint64_t size, chunk_size, image_inode;
    char image_id[33];
};
/* Reads only the header of the state file at PATH: 1 and *OUT, 0 if there
 * is none, -1 with a sentence in ERR if it is not a state file. */
int state_file_peek(const char *path, struct state_summary *out, char *err, size_t errlen);
/* Loads the chunk states (l->image_id and l->geo set, l->image open): 1 if
 * it resumed, 0 if there is no file, -1 with a sentence in ERR. Sets the
 * phase, downtime and last recorded Sync generation. */
int state_file_load(struct leecher *l, char *err, size_t errlen);
/* Flushes the image, then records every local chunk. */
int state_file_save(struct leecher *l);
/* Records the phase and Sync generation without flushing the image: only
 * chunks unchanged since the last flush count as local (the others are
 * pulled again after a crash). Flushes after all if that would drop a
 * chunk the destination app wrote. */
int state_file_record(struct leecher *l);
/* The destination app made CHUNK local by writing it. */
void state_file_note_written(struct leecher *l, uint64_t chunk);
/* A FLUSH or FUA: the image is flushed, and the state file records every
 * chunk the app wrote before it returns. */
int state_file_persist_writes(struct leecher *l);

/* startup.c: a fresh start, or a resume in the phase the state file
 * records. 1 if resumed, 0 if fresh, -1 with a sentence in ERR. */
int leecher_prepare(struct leecher *l, const char *seeder, const char *path, char *err,
                    size_t errlen);
/* The started or resumed event. */
void leecher_log_start(struct leecher *l, bool resumed);

/* holes.c: after Track, chunks wholly in a hole of the source become
 * local without a ReadAt (Seeder.Holes; a "holes" event says how many). */
void leecher_take_holes(struct leecher *l);

/* storage.c: the destination file system filling up. */
bool storage_error(int err); /* ENOSPC or EDQUOT */
/* A pull could not be stored for lack of space: stop pulling and say so. */
void storage_full(struct leecher *l);
/* While full (the monitor, every tick): resume once there is room. */
void storage_check(struct leecher *l);
void storage_warn_at_start(struct leecher *l);

/* backend.c: the NBD backend (the gate, then reads and writes over the map). */
void leecher_backend(struct leecher *l, struct nbd_backend *backend);
/* control.c: the godwit.v1.Leecher service (Status, Finalize). */
void leecher_service(struct leecher *l, struct rpc_service *service);

#endif
