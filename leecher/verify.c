/* SPDX-License-Identifier: MIT */
/* --verify: once every chunk is local in post-copy, the local image is
 * compared chunk by chunk with the frozen source before the leecher reports
 * COMPLETE. A helper thread asks the seeder for its chunks' digests
 * (Seeder.Digest, 256 MiB a call, over the control connection) while this
 * thread hashes the local file, so both sides read and hash at once.
 * Chunks the destination app wrote (WRITTEN) are skipped: they differ from
 * the source by design. The ReadAt checksums prove what crossed the wire;
 * this proves what sits in the file, and that no source write was missed
 * by dirty tracking. */
#include "leecher.h"

#include "log.h"
#include "read-checksum.h"
#include "seeder-client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    DIGEST_CALL_BYTES = 256 << 20, /* the seeder's largest Digest */
    HASH_BUFFER = 1 << 20,
    MAX_EVENTS = 10, /* verify_mismatch events at most; the count is in the error */
};

/* The seeder's side, fetched by a thread of its own. */
struct remote_digests {
    struct leecher *l;
    uint64_t *digests; /* one per chunk */
    grpc_status_code status;
    char message[256];
};

static void *fetch_remote(void *arg)
{
    struct remote_digests *r = arg;
    struct leecher *l = r->l;
    uint64_t per_call = DIGEST_CALL_BYTES / l->geo.chunk_size;
    per_call = per_call ? per_call : 1;
    r->status = GRPC_STATUS_OK;
    for (uint64_t first = 0; first < l->geo.chunks && r->status == GRPC_STATUS_OK;
         first += per_call) {
        uint64_t n = l->geo.chunks - first < per_call ? l->geo.chunks - first : per_call;
        uint64_t offset = chunk_offset(&l->geo, first);
        uint64_t end = chunk_offset(&l->geo, first + n - 1) + chunk_length(&l->geo, first + n - 1);
        struct rpc_result result;
        r->status = seeder_client_digest(l->seeder, l->image_id, offset, end - offset,
                                         r->digests + first, (size_t)n, &result);
        if (r->status != GRPC_STATUS_OK)
            snprintf(r->message, sizeof r->message, "%s", result.message);
    }
    return NULL;
}

/* Hashes every chunk of the local image into LOCAL; SKIP[i] is set for a
 * chunk the destination app wrote before or while it was hashed. 0, or -1
 * with errno (a read failed). */
static int hash_local(struct leecher *l, uint64_t *local, bool *skip)
{
    uint8_t *buf = malloc(HASH_BUFFER);
    if (!buf)
        return errno = ENOMEM, -1;
    for (uint64_t i = 0; i < l->geo.chunks; i++) {
        if (chunk_map_state(l->map, i) != CHUNK_LOCAL) {
            skip[i] = true;
            continue;
        }
        if (read_checksum_image(&l->image, chunk_offset(&l->geo, i), chunk_length(&l->geo, i), buf,
                                HASH_BUFFER, &local[i]) < 0) {
            int err = errno;
            free(buf);
            return errno = err, -1;
        }
        /* A write marks the chunk WRITTEN before its bytes change: still
         * LOCAL now means the bytes hashed were the pulled ones. */
        skip[i] = chunk_map_state(l->map, i) != CHUNK_LOCAL;
    }
    free(buf);
    return 0;
}

static void set_verify(struct leecher *l, enum verify_state state, uint64_t took_us)
{
    pthread_mutex_lock(&l->lock);
    l->verify = state;
    l->verify_us = took_us;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
}

/* Compares; reports each differing chunk (the first MAX_EVENTS as events)
 * and fails the migration if there is one. */
static void compare(struct leecher *l, const uint64_t *local, const uint64_t *remote,
                    const bool *skip, uint64_t took_us)
{
    uint64_t differing = 0, skipped = 0, first_bad = 0;
    for (uint64_t i = 0; i < l->geo.chunks; i++) {
        if (skip[i]) {
            skipped++;
            continue;
        }
        if (local[i] == remote[i])
            continue;
        if (differing++ == 0)
            first_bad = i;
        if (differing <= MAX_EVENTS)
            log_event(l->log, "verify_mismatch",
                      json_pack("{s:I,s:i}", "offset", (json_int_t)chunk_offset(&l->geo, i),
                                "length", (int)chunk_length(&l->geo, i)));
    }
    metric_counter_add(&l->verify_mismatches, differing);
    if (differing) {
        set_verify(l, VERIFY_FAILED, took_us);
        leecher_fail(l,
                     "--verify: %llu chunks of the destination differ from the frozen source "
                     "(the first at offset %llu); the source is intact, the copy is not",
                     (unsigned long long)differing,
                     (unsigned long long)chunk_offset(&l->geo, first_bad));
        return;
    }
    set_verify(l, VERIFY_PASSED, took_us);
    log_event(l->log, "verified",
              json_pack("{s:I,s:I,s:f}", "chunks", (json_int_t)(l->geo.chunks - skipped),
                        "skipped_written", (json_int_t)skipped, "ms", (double)took_us / 1000));
}

/* The seeder could not answer: UNIMPLEMENTED (an older seeder) completes
 * unverified, anything else is tried again later. */
static void remote_failed(struct leecher *l, const struct remote_digests *r, uint64_t took_us)
{
    if (r->status == GRPC_STATUS_UNIMPLEMENTED) {
        log_warn(l->log, "the seeder has no Digest (an older godwit): the copy is not verified");
        set_verify(l, VERIFY_UNSUPPORTED, took_us);
        return;
    }
    if (r->status == GRPC_STATUS_FAILED_PRECONDITION) {
        set_verify(l, VERIFY_FAILED, took_us);
        leecher_fail(l, "--verify: the seeder refused Digest: %s", r->message);
        return;
    }
    log_warn(l->log, "--verify: cannot get the seeder's digests (%s); trying again", r->message);
    set_verify(l, VERIFY_PENDING, took_us);
}

void leecher_verify(struct leecher *l)
{
    uint64_t start = leecher_now_us();
    set_verify(l, VERIFY_RUNNING, 0);
    struct remote_digests r = {l, calloc(l->geo.chunks, sizeof *r.digests), GRPC_STATUS_OK, ""};
    uint64_t *local = calloc(l->geo.chunks, sizeof *local);
    bool *skip = calloc(l->geo.chunks, sizeof *skip);
    pthread_t fetcher;
    int err =
        !r.digests || !local || !skip ? ENOMEM : pthread_create(&fetcher, NULL, fetch_remote, &r);
    if (err) {
        free(r.digests), free(local), free(skip);
        log_warn(l->log, "--verify: cannot start: %s; trying again", strerror(err));
        set_verify(l, VERIFY_PENDING, 0);
        return;
    }
    int hashed = hash_local(l, local, skip);
    err = errno;
    pthread_join(fetcher, NULL);
    uint64_t took = leecher_now_us() - start;
    if (hashed < 0) {
        set_verify(l, VERIFY_FAILED, took);
        leecher_fail(l, "--verify: cannot read the local image %s: %s", l->image_path,
                     strerror(err));
    } else if (r.status != GRPC_STATUS_OK) {
        remote_failed(l, &r, took);
    } else {
        compare(l, local, r.digests, skip, took);
    }
    free(r.digests), free(local), free(skip);
}
