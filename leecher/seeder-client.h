/* SPDX-License-Identifier: MIT */
/* The leecher's one client of godwit.v1.Seeder: a typed call per method.
 * It owns the method names, the timeouts and the channel choice: control
 * calls (Info, Track, Sync, Finalize, Complete) and on-demand reads go on
 * the control channel, a connection of its own; background ReadAt on the
 * bulk channel its lane picks (the caller keeps them within the bulk byte
 * budget, bulk-budget.h, which control calls give their round trips to).
 * Every ReadAt, on-demand ones first, is charged to the
 * --max-bandwidth bucket (rate-limit.h). Thread-safe: any thread may call
 * at any time. */
#ifndef GODWIT_LEECHER_SEEDER_CLIENT_H
#define GODWIT_LEECHER_SEEDER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "godwit/v1/seeder.pb-c.h"
#include "proto-wire.h"
#include "rpc-client.h"

struct bulk_budget;
struct seeder_client;

/* --compress: whether ReadAt asks the seeder for zstd-compressed data. */
enum seeder_compress {
    COMPRESS_OFF,  /* never */
    COMPRESS_ZSTD, /* always */
    COMPRESS_AUTO, /* background pulls, while the link delivers below SEEDER_AUTO_COMPRESS_BELOW */
};

/* auto's threshold, bytes per second on the wire: 1 Gbit/s. Above it the
 * seeder's compression would be slower than the link (docs/benchmarks.md). */
#define SEEDER_AUTO_COMPRESS_BELOW 125e6

struct seeder_client_config {
    const char *target; /* the seeder's gRPC address */
    unsigned channels;  /* TCP connections in the bulk pool, at least 1 (plus the control one) */
    struct rpc_tls tls; /* client side, as struct rpc_channel_config has it */
    uint64_t max_bandwidth; /* bytes/s of every ReadAt together; 0: unlimited */
    enum seeder_compress compress;
    struct bulk_budget *budget; /* control calls report their round trips to it; NULL: none */
};

/* Opens the pool (connections come up lazily). NULL with a sentence in ERR. */
struct seeder_client *seeder_client_open(const struct seeder_client_config *config, char *err,
                                         size_t errlen);
void seeder_client_close(struct seeder_client *client);

/* Control calls. Each returns the decoded reply (free it with
 * protobuf_c_message_free_unpacked(&reply->base, NULL)), or NULL with the
 * status and the seeder's message in *RESULT. IMAGE_ID is the image the
 * leecher copies: the seeder refuses (FAILED_PRECONDITION) if it serves
 * another. */
Godwit__V1__InfoResponse *seeder_client_info(struct seeder_client *client,
                                             struct rpc_result *result);
/* Info whose dirty_chunks leaves out the Sync set ACK_GENERATION that the
 * leecher recorded: what its Finalize would carry now. */
Godwit__V1__InfoResponse *seeder_client_info_acked(struct seeder_client *client,
                                                   uint64_t ack_generation,
                                                   struct rpc_result *result);
Godwit__V1__SyncResponse *seeder_client_sync(struct seeder_client *client, const char *image_id,
                                             uint64_t ack_generation, struct rpc_result *result);
Godwit__V1__FinalizeResponse *seeder_client_finalize(struct seeder_client *client,
                                                     const char *image_id, uint64_t ack_generation,
                                                     struct rpc_result *result);
/* Track opens a session of this leecher's own (NEW_SESSION), or resumes
 * *SESSION (0: the default session, which a state file from before
 * sessions means), and stores the id in *SESSION and in the client:
 * Info, Sync, Finalize and Complete then name it. Call it before any of
 * those run on other threads. A seeder without sessions answers id 0 (its
 * one dirty set), which later calls then send: the default session. */
grpc_status_code seeder_client_track(struct seeder_client *client, bool new_session,
                                     uint64_t *session, struct rpc_result *result);
/* Names SESSION in later calls without a Track: a leecher resumed after
 * the freeze (Track is for tracking, which the freeze ended). */
void seeder_client_use_session(struct seeder_client *client, uint64_t session);
/* Digest of the N chunks from chunk-aligned OFFSET (LENGTH bytes, at most
 * 256 MiB) into DIGESTS: one XXH3-64 per chunk. A reply with another count
 * or digest kind gives GRPC_STATUS_INTERNAL. */
grpc_status_code seeder_client_digest(struct seeder_client *client, const char *image_id,
                                      uint64_t offset, uint64_t length, uint64_t *digests, size_t n,
                                      struct rpc_result *result);
/* Holes in [OFFSET, OFFSET+LENGTH) as the source file has them now (a
 * control call): reply->end says how far it looked. */
Godwit__V1__HolesResponse *seeder_client_holes(struct seeder_client *client, const char *image_id,
                                               uint64_t offset, uint64_t length,
                                               struct rpc_result *result);
/* Complete carries nothing back but its status. */
grpc_status_code seeder_client_complete(struct seeder_client *client, struct rpc_result *result);

/* One ReadAt. LANE picks the bulk channel (a worker's index): one lane
 * always uses the same channel. ON_DEMAND: a read someone waits for; it
 * takes the control channel and goes first in the bandwidth bucket.
 * CHECKSUM: ask for the reply's checksum and verify it. PAID: the caller
 * took LENGTH from the bucket already (seeder_client_take_bandwidth). */
struct seeder_read {
    const char *image_id;
    uint64_t offset;
    uint32_t length;
    uint64_t lane;
    bool on_demand;
    bool checksum;
    bool paid;
};

/* Waits until BYTES of background ReadAt may go under --max-bandwidth and
 * takes them: a worker does it before it reserves the bulk budget, so its
 * wait for tokens holds no budget. Bytes it then does not ask for go back
 * with seeder_client_refund_bandwidth. */
void seeder_client_take_bandwidth(struct seeder_client *client, uint64_t bytes);
void seeder_client_refund_bandwidth(struct seeder_client *client, uint64_t bytes);

/* The data of a ReadAt reply, left in place in gRPC's slices, or decoded
 * into a buffer of its own if the seeder compressed it. The call asks for
 * zero ranges (allow_zero_ranges): chunks that read as zeroes are in ZEROS
 * (ascending, disjoint, inside the range asked for), not in the data, which
 * holds the rest of the range in order. */
struct seeder_data {
    struct rpc_response reply;     /* the reply as received */
    size_t at;                     /* where the data starts in it */
    size_t length;                 /* bytes of data: what was asked for less the zeroes */
    uint8_t *decoded;              /* malloc'd: the LENGTH bytes, if the data came compressed */
    struct wire_zero_range *zeros; /* malloc'd, or NULL */
    size_t n_zeros;
};

/* Reads READ's range into *DATA (free with seeder_data_free), asking for
 * compressed data as --compress says. A reply that is not a ReadAtResponse
 * whose data and zero ranges make up exactly the range asked for (with the
 * checksum asked for), or whose compressed data does not decode to exactly
 * that, gives GRPC_STATUS_INTERNAL (the caller retries); one whose checksum
 * is not that of its logical bytes (decoded) gives GRPC_STATUS_DATA_LOSS;
 * on any failure *DATA holds nothing. */
grpc_status_code seeder_client_read_at(struct seeder_client *client, const struct seeder_read *read,
                                       struct seeder_data *data, struct rpc_result *result);
/* Points IOV (room for MAX) at LENGTH bytes of the data from OFFSET (0 is
 * the data's first byte); the count, or -1 if out of range or over MAX. */
int seeder_data_iov(const struct seeder_data *data, size_t offset, size_t length, struct iovec *iov,
                    int max);
void seeder_data_free(struct seeder_data *data);

/* Microseconds in all that background ReadAts waited for --max-bandwidth
 * (0 without a limit). */
uint64_t seeder_client_throttled_us(struct seeder_client *client);
/* Bytes of --max-bandwidth lost to background ReadAts that woke late
 * (rate_limit_forfeited_bytes; 0 without a limit). */
uint64_t seeder_client_forfeited_bytes(struct seeder_client *client);

/* Whether background ReadAt asks for compressed data now (auto: from the
 * rate the link delivered lately). */
bool seeder_client_compressing(struct seeder_client *client);

#endif
