/* SPDX-License-Identifier: MIT */
/* The godwit.v1.Seeder gRPC service: Info, ReadAt, Track, Sync, Finalize,
 * Complete, Abort, Digest and Holes, as api/godwit/v1/seeder.proto
 * documents them.
 * Handlers run concurrently on the server's threads; ReadAt takes no lock
 * at all. */
#include "seeder.h"

#include "godwit/v1/seeder.pb-c.h"
#include "log.h"
#include "proto-wire.h"
#include "read-checksum.h"
#include "rpc-server.h"
#include "zero-read.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const Godwit__V1__SeederState wire_states[] = {
    [TRACKER_SERVING] = GODWIT__V1__SEEDER_STATE__SEEDER_STATE_SERVING,
    [TRACKER_TRACKING] = GODWIT__V1__SEEDER_STATE__SEEDER_STATE_TRACKING,
    [TRACKER_FROZEN] = GODWIT__V1__SEEDER_STATE__SEEDER_STATE_FROZEN,
    [TRACKER_COMPLETE] = GODWIT__V1__SEEDER_STATE__SEEDER_STATE_COMPLETE,
};

static void handle_info(void *opaque, const ProtobufCMessage *message, struct rpc_reply *reply)
{
    struct seeder *seeder = opaque;
    const Godwit__V1__InfoRequest *request = (const void *)message;
    struct tracker_stats stats;
    char image_id[33];
    tracker_stats(seeder->tracker, request->session_id, request->ack_generation, &stats);
    tracker_image_id(seeder->tracker, image_id);
    Godwit__V1__InfoResponse response = GODWIT__V1__INFO_RESPONSE__INIT;
    response.size = seeder->image.size;
    response.chunk_size = seeder->geo.chunk_size;
    response.image_id = image_id;
    response.max_read_length = SEEDER_MAX_READ;
    response.state = wire_states[stats.state];
    response.dirty_chunks = stats.dirty_chunks;
    response.dirty_rate = stats.dirty_rate;
    response.sessions = (uint32_t)stats.sessions;
    response.held_writes = stats.gate.held_now;
    response.held_bytes = stats.gate.held_bytes_now;
    response.held_writes_total = stats.gate.held_total;
    response.refused_writes_total = stats.gate.refused_total;
    response.checksum = GODWIT__V1__CHECKSUM_KIND__CHECKSUM_KIND_XXH3_64;
    rpc_reply_message(reply, &response.base);
}

/* False (and the reply sent) if the caller expects another image. */
static bool same_image(struct seeder *seeder, const char *expected, struct rpc_reply *reply)
{
    if (!expected || !expected[0])
        return true;
    char image_id[33];
    tracker_image_id(seeder->tracker, image_id);
    if (strcmp(expected, image_id) == 0)
        return true;
    rpc_reply_errno(reply, ESTALE,
                    "this seeder serves image %s, not %s (it was restarted before Finalize, or "
                    "the migration was aborted)",
                    image_id, expected);
    return false;
}

/* A ReadAt whose read failed (errno): logged, and the status from errno. */
static void read_failed(struct seeder *seeder, const Godwit__V1__ReadAtRequest *request,
                        struct rpc_reply *reply)
{
    int err = errno;
    log_error(seeder->log, "ReadAt %llu+%u: %s", (unsigned long long)request->offset,
              request->length, strerror(err));
    rpc_reply_errno(reply, err, "cannot read the image: %s", strerror(err));
}

/* Answers with a ReadAtResponse encoded by hand (proto-wire.h), so pread
 * fills the reply slice directly; with zero ranges or compression asked
 * for, from zero-read.c. */
static void handle_read_at(void *opaque, const ProtobufCMessage *message, struct rpc_reply *reply)
{
    struct seeder *seeder = opaque;
    const Godwit__V1__ReadAtRequest *request = (const void *)message;
    if (!same_image(seeder, request->image_id, reply))
        return;
    if (request->length == 0 || request->length > SEEDER_MAX_READ) {
        rpc_reply_errno(reply, EINVAL, "length must be between 1 and %u bytes, not %u",
                        SEEDER_MAX_READ, request->length);
        return;
    }
    if (!chunk_range_valid(&seeder->geo, request->offset, request->length)) {
        rpc_reply_errno(reply, ERANGE, "range %llu+%u ends past the image (%llu bytes)",
                        (unsigned long long)request->offset, request->length,
                        (unsigned long long)seeder->image.size);
        return;
    }
    grpc_slice slice;
    const struct read_mode mode = {
        request->allow_zero_ranges,
        request->accept_encoding == GODWIT__V1__ENCODING__ENCODING_ZSTD ? seeder->compressor : NULL,
        request->want_checksum};
    if (mode.zero_ranges || mode.compressor) {
        struct read_sizes sizes;
        if (zero_read(&seeder->image, &seeder->geo, request->offset, request->length, &mode, &slice,
                      &sizes) < 0) {
            read_failed(seeder, request, reply);
            return;
        }
        metric_counter_add(&seeder->served_bytes, request->length);
        metric_counter_add(&seeder->sent_data_bytes, sizes.sent);
        rpc_reply_slice(reply, slice);
        return;
    }
    uint8_t *data = wire_read_at_slice(&slice, request->length, request->want_checksum);
    if (image_pread(&seeder->image, data, request->length, request->offset) < 0) {
        grpc_slice_unref(slice);
        read_failed(seeder, request, reply);
        return;
    }
    if (request->want_checksum) /* of the bytes just read, as they leave */
        wire_read_at_checksum(&slice, XXH3_64bits(data, request->length));
    metric_counter_add(&seeder->served_bytes, request->length);
    metric_counter_add(&seeder->sent_data_bytes, request->length);
    rpc_reply_slice(reply, slice);
}

/* ReadAt timed for /metrics (two clock reads and two relaxed atomic adds). */
static void handle_read_at_timed(void *opaque, const ProtobufCMessage *message,
                                 struct rpc_reply *reply)
{
    struct seeder *seeder = opaque;
    uint64_t start = metric_now_us();
    handle_read_at(opaque, message, reply);
    metric_histogram_observe(&seeder->read_at_us, metric_now_us() - start);
}

/* Flushes the image, as Finalize promises: the frozen source is on disk
 * before the seeder persists the freeze and the destination takes over. */
static bool flushed(struct seeder *seeder, struct rpc_reply *reply)
{
    if (tracker_flush(seeder->tracker, &seeder->image) == 0)
        return true;
    int err = errno;
    rpc_reply_errno(reply, err, "cannot flush the image: %s", strerror(err));
    return false;
}

/* Answers a failed tracker call: WHAT says which state the call needs. */
static void reply_tracker_error(struct rpc_reply *reply, uint64_t session, const char *what)
{
    int err = errno;
    if (err == EBUSY)
        rpc_reply_errno(reply, err, "%s", what);
    else if (err == ESTALE)
        rpc_reply_errno(reply, err,
                        "no session %llu on this seeder (call Track first; sessions end at Abort "
                        "and at a restart before Finalize)",
                        (unsigned long long)session);
    else if (err == EIO)
        rpc_reply_errno(reply, err, "cannot write the seeder's state file (see its log); retry");
    else
        rpc_reply_errno(reply, err, "%s", strerror(err));
}

static void handle_track(void *opaque, const ProtobufCMessage *message, struct rpc_reply *reply)
{
    struct seeder *seeder = opaque;
    const Godwit__V1__TrackRequest *request = (const void *)message;
    /* No flush: ReadAt reads the page cache the NBD writes went to, and
     * durability is the source app's (its NBD FLUSH and FUA). */
    const struct track_request track = {request->session_id, request->new_session};
    struct track_result result;
    if (tracker_track(seeder->tracker, &track, &result) < 0) {
        if (errno == EUSERS)
            rpc_reply_errno(reply, EUSERS,
                            "this seeder already has %u sessions, its --max-sessions",
                            seeder->max_sessions);
        else
            reply_tracker_error(reply, request->session_id,
                                "the migration is complete: no new session");
        return;
    }
    Godwit__V1__TrackResponse response = GODWIT__V1__TRACK_RESPONSE__INIT;
    response.already_tracking = result.already_tracking;
    response.session_id = result.session_id;
    if (!response.already_tracking)
        log_event(seeder->log, "tracking",
                  json_pack("{s:I}", "session", (json_int_t)result.session_id));
    rpc_reply_message(reply, &response.base);
}

static void handle_sync(void *opaque, const ProtobufCMessage *message, struct rpc_reply *reply)
{
    struct seeder *seeder = opaque;
    const Godwit__V1__SyncRequest *request = (const void *)message;
    struct dirty_list list;
    if (!same_image(seeder, request->image_id, reply)) /* no flush: see handle_track */
        return;
    if (tracker_sync(seeder->tracker, request->session_id, request->ack_generation, &list) < 0) {
        reply_tracker_error(reply, request->session_id,
                            "Sync is over once the session called Finalize");
        return;
    }
    Godwit__V1__SyncResponse response = GODWIT__V1__SYNC_RESPONSE__INIT;
    response.n_dirty_offsets = list.count;
    response.dirty_offsets = list.offsets;
    response.n_dirty_pages = list.count;
    response.dirty_pages = list.pages;
    response.generation = list.generation;
    rpc_reply_message(reply, &response.base);
    dirty_list_free(&list);
}

static void handle_finalize(void *opaque, const ProtobufCMessage *message, struct rpc_reply *reply)
{
    struct seeder *seeder = opaque;
    const Godwit__V1__FinalizeRequest *request = (const void *)message;
    struct dirty_list list;
    uint64_t start = metric_now_us();
    /* Flush while the app still runs, so the flush after the freeze only
     * has the last few writes to push: downtime stays small. */
    if (!same_image(seeder, request->image_id, reply) || !flushed(seeder, reply))
        return;
    uint64_t before_freeze = metric_now_us() - start;
    if (tracker_finalize(seeder->tracker, request->session_id, request->ack_generation, &list) <
        0) {
        reply_tracker_error(reply, request->session_id, "Finalize needs Track first");
        return;
    }
    if (!flushed(seeder, reply)) {
        dirty_list_free(&list);
        return;
    }
    if (!list.already_finalized)
        log_event(seeder->log, "frozen",
                  json_pack("{s:I,s:I}", "session", (json_int_t)request->session_id, "dirty_chunks",
                            (json_int_t)list.count));
    Godwit__V1__FinalizeResponse response = GODWIT__V1__FINALIZE_RESPONSE__INIT;
    response.n_dirty_offsets = list.count;
    response.dirty_offsets = list.offsets;
    response.already_finalized = list.already_finalized;
    response.before_freeze_us = list.already_finalized ? 0 : before_freeze;
    rpc_reply_message(reply, &response.base);
    dirty_list_free(&list);
}

static void handle_complete(void *opaque, const ProtobufCMessage *message, struct rpc_reply *reply)
{
    struct seeder *seeder = opaque;
    const Godwit__V1__CompleteRequest *request = (const void *)message;
    bool all_done;
    if (tracker_complete(seeder->tracker, request->session_id, &all_done) < 0) {
        reply_tracker_error(reply, request->session_id, "Complete needs Finalize first");
        return;
    }
    Godwit__V1__CompleteResponse response = GODWIT__V1__COMPLETE_RESPONSE__INIT;
    rpc_reply_message(reply, &response.base);
    log_event(seeder->log, "complete",
              json_pack("{s:I,s:b}", "session", (json_int_t)request->session_id, "all_sessions",
                        all_done));
    if (seeder->exit_on_complete && all_done)
        kill(getpid(), SIGTERM); /* main's signal wait runs the clean shutdown */
}

static void handle_abort(void *opaque, const ProtobufCMessage *request, struct rpc_reply *reply)
{
    struct seeder *seeder = opaque;
    struct abort_result result;
    (void)request;
    if (tracker_abort(seeder->tracker, &result) < 0) {
        reply_tracker_error(reply, 0,
                            "the migration is complete: a destination holds the image, there is "
                            "nothing to abort");
        return;
    }
    char image_id[33];
    tracker_image_id(seeder->tracker, image_id);
    Godwit__V1__AbortResponse response = GODWIT__V1__ABORT_RESPONSE__INIT;
    response.previous_state = wire_states[result.before];
    response.released_writes = result.released;
    response.ended_sessions = result.sessions;
    response.image_id = image_id;
    rpc_reply_message(reply, &response.base);
    log_event(seeder->log, "aborted",
              json_pack("{s:I,s:I,s:s}", "released_writes", (json_int_t)result.released,
                        "ended_sessions", (json_int_t)result.sessions, "image_id", image_id));
}

enum {
    DIGEST_MAX = 256 << 20, /* bytes one Digest call may hash */
    DIGEST_BUFFER = 1 << 20,
};

/* True if [OFFSET, OFFSET+LENGTH) suits Digest; else replies and false. */
static bool digest_range_valid(struct seeder *seeder, uint64_t offset, uint64_t length,
                               struct rpc_reply *reply)
{
    const struct chunk_geometry *geo = &seeder->geo;
    uint64_t end = offset + length;
    if (length == 0 || length > DIGEST_MAX)
        rpc_reply_errno(reply, EINVAL, "Digest length must be between 1 and %u bytes, not %llu",
                        (unsigned)DIGEST_MAX, (unsigned long long)length);
    else if (end < offset || end > geo->size)
        rpc_reply_errno(reply, ERANGE, "range %llu+%llu ends past the image (%llu bytes)",
                        (unsigned long long)offset, (unsigned long long)length,
                        (unsigned long long)geo->size);
    else if (offset % geo->chunk_size || (end % geo->chunk_size && end != geo->size))
        rpc_reply_errno(reply, EINVAL, "Digest ranges start and end at chunks of %u bytes",
                        geo->chunk_size);
    else
        return true;
    return false;
}

/* Digest: XXH3-64 of each chunk of the range, read now. */
static void handle_digest(void *opaque, const ProtobufCMessage *message, struct rpc_reply *reply)
{
    struct seeder *seeder = opaque;
    const Godwit__V1__DigestRequest *request = (const void *)message;
    if (!same_image(seeder, request->image_id, reply) ||
        !digest_range_valid(seeder, request->offset, request->length, reply))
        return;
    uint64_t first = chunk_index(&seeder->geo, request->offset);
    size_t n =
        (size_t)(chunk_index(&seeder->geo, request->offset + request->length - 1) - first + 1);
    uint64_t *digests = malloc(n * sizeof *digests);
    uint8_t *buf = malloc(DIGEST_BUFFER);
    if (!digests || !buf) {
        free(digests), free(buf);
        rpc_reply_errno(reply, ENOMEM, "out of memory for a Digest of %zu chunks", n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t chunk = first + i;
        if (read_checksum_image(&seeder->image, chunk_offset(&seeder->geo, chunk),
                                chunk_length(&seeder->geo, chunk), buf, DIGEST_BUFFER,
                                &digests[i]) < 0) {
            int err = errno;
            log_error(seeder->log, "Digest of chunk %llu: %s", (unsigned long long)chunk,
                      strerror(err));
            rpc_reply_errno(reply, err, "cannot read the image: %s", strerror(err));
            free(digests), free(buf);
            return;
        }
    }
    Godwit__V1__DigestResponse response = GODWIT__V1__DIGEST_RESPONSE__INIT;
    response.n_chunk_digests = n;
    response.chunk_digests = digests;
    response.kind = GODWIT__V1__CHECKSUM_KIND__CHECKSUM_KIND_XXH3_64;
    rpc_reply_message(reply, &response.base);
    free(digests), free(buf);
}

enum { HOLES_MAX = 16384 }; /* holes one reply carries (about 22 bytes each) */

/* The holes found so far by one Holes call; *END: where it stopped. */
struct holes {
    Godwit__V1__ZeroRange *ranges;
    Godwit__V1__ZeroRange **list;
    size_t n;
    uint64_t end;
};

static int add_hole(void *arg, uint64_t offset, uint64_t length, bool hole)
{
    struct holes *h = arg;
    if (hole && h->n == HOLES_MAX)
        return 1; /* full: the next call starts at this hole */
    if (hole) {
        Godwit__V1__ZeroRange *r = &h->ranges[h->n];
        godwit__v1__zero_range__init(r);
        r->offset = offset, r->length = length;
        h->list[h->n++] = r;
    }
    h->end = offset + length;
    return 0;
}

/* Holes: the unallocated ranges of the image file, as it is now. */
static void handle_holes(void *opaque, const ProtobufCMessage *message, struct rpc_reply *reply)
{
    struct seeder *seeder = opaque;
    const Godwit__V1__HolesRequest *request = (const void *)message;
    uint64_t offset = request->offset, end = offset + request->length;
    if (!same_image(seeder, request->image_id, reply))
        return;
    if (request->length == 0 || end < offset || end > seeder->image.size) {
        rpc_reply_errno(reply, request->length ? ERANGE : EINVAL,
                        "Holes range %llu+%llu is empty or ends past the image (%llu bytes)",
                        (unsigned long long)offset, (unsigned long long)request->length,
                        (unsigned long long)seeder->image.size);
        return;
    }
    struct holes h = {malloc(HOLES_MAX * sizeof *h.ranges), malloc(HOLES_MAX * sizeof *h.list), 0,
                      offset};
    if (!h.ranges || !h.list) {
        free(h.ranges), free(h.list);
        rpc_reply_errno(reply, ENOMEM, "out of memory for a Holes reply");
        return;
    }
    if (image_describe(&seeder->image, offset, end, add_hole, &h) < 0) {
        int err = errno;
        free(h.ranges), free(h.list);
        rpc_reply_errno(reply, err, "cannot find the image's holes: %s", strerror(err));
        return;
    }
    Godwit__V1__HolesResponse response = GODWIT__V1__HOLES_RESPONSE__INIT;
    response.n_holes = h.n;
    response.holes = h.list;
    response.end = h.end;
    rpc_reply_message(reply, &response.base);
    free(h.ranges), free(h.list);
}

static const struct rpc_method seeder_methods[] = {
    {"Info", &godwit__v1__info_request__descriptor, handle_info},
    {"ReadAt", &godwit__v1__read_at_request__descriptor, handle_read_at_timed},
    {"Track", &godwit__v1__track_request__descriptor, handle_track},
    {"Sync", &godwit__v1__sync_request__descriptor, handle_sync},
    {"Finalize", &godwit__v1__finalize_request__descriptor, handle_finalize},
    {"Complete", &godwit__v1__complete_request__descriptor, handle_complete},
    {"Abort", &godwit__v1__abort_request__descriptor, handle_abort},
    {"Digest", &godwit__v1__digest_request__descriptor, handle_digest},
    {"Holes", &godwit__v1__holes_request__descriptor, handle_holes},
};

void seeder_service(struct seeder *seeder, struct rpc_service *service)
{
    *service = (struct rpc_service){
        .name = "godwit.v1.Seeder",
        .methods = seeder_methods,
        .n_methods = sizeof seeder_methods / sizeof seeder_methods[0],
        .opaque = seeder,
    };
}
