/* SPDX-License-Identifier: MIT */
/* The godwit.v1.Leecher control service: Status and Finalize. */
#include "leecher.h"

#include "godwit/v1/leecher.pb-c.h"
#include "rpc-server.h"
#include "seeder-client.h"

#include <errno.h>

static void handle_status(void *opaque, const ProtobufCMessage *request, struct rpc_reply *reply)
{
    struct leecher *l = opaque;
    (void)request;
    Godwit__V1__StatusResponse r = GODWIT__V1__STATUS_RESPONSE__INIT;
    pthread_mutex_lock(&l->lock);
    r.state = (Godwit__V1__State)l->state;
    r.error = l->error;
    r.verify = (Godwit__V1__VerifyState)l->verify;
    r.downtime_us = l->downtime_us;
    r.dirty_rate = l->dirty_rate;
    r.finalize_dirty_chunks = l->state == PRECOPY ? l->source_dirty : l->finalize_dirty;
    r.predicted_downtime_ms =
        l->freeze_started_us ? l->finalize_predicted_ms
                             : leecher_predict_downtime_ms(l, l->source_dirty, l->round_trip_us);
    bool precopy = l->state == PRECOPY; /* convergence is pre-copy's question */
    r.not_converging = precopy && l->not_converging;
    r.stalled_rounds = precopy ? l->stalled_rounds : 0;
    r.convergence_hint = r.not_converging ? l->convergence_hint : "";
    pthread_mutex_unlock(&l->lock);
    r.size = l->geo.size;
    r.chunk_size = l->geo.chunk_size;
    r.chunks_total = l->geo.chunks;
    r.chunks_local = chunk_map_local(l->map);
    r.chunks_remaining = r.chunks_total - r.chunks_local;
    r.chunks_redirtied = atomic_load(&l->chunks_redirtied);
    r.bytes_pulled = atomic_load(&l->bytes_pulled);
    r.bytes_decoded = atomic_load(&l->bytes_decoded);
    r.compressing = seeder_client_compressing(l->seeder);
    r.image_id = l->image_id;
    r.max_bandwidth = l->max_bandwidth;
    r.bandwidth_throttled_us = seeder_client_throttled_us(l->seeder);
    r.bandwidth_forfeited_bytes = seeder_client_forfeited_bytes(l->seeder);
    r.checksum_mismatches = metric_counter_get(&l->checksum_mismatches);
    r.sync_rounds = metric_counter_get(&l->sync_rounds);
    r.pull_retries = metric_counter_get(&l->pull_retries);
    r.on_demand_pulls = metric_histogram_count(&l->on_demand_us);
    r.on_demand_bytes = atomic_load(&l->on_demand_bytes);
    uint64_t elapsed = leecher_now_us() - l->started_us;
    r.pull_rate = elapsed ? (double)r.bytes_pulled / ((double)elapsed / 1e6) : 0;
    rpc_reply_message(reply, &r.base);
}

static void handle_finalize(void *opaque, const ProtobufCMessage *request, struct rpc_reply *reply)
{
    struct leecher *l = opaque;
    (void)request;
    char err[256];
    if (leecher_finalize(l, err, sizeof err) < 0) {
        rpc_reply_errno(reply, errno, "%s", err); /* EAGAIN: retry; EBUSY: failed */
        return;
    }
    Godwit__V1__LeecherFinalizeResponse r = GODWIT__V1__LEECHER_FINALIZE_RESPONSE__INIT;
    pthread_mutex_lock(&l->lock);
    r.downtime_us = l->downtime_us;
    r.dirty_chunks = l->finalize_dirty;
    pthread_mutex_unlock(&l->lock);
    rpc_reply_message(reply, &r.base);
}

static const struct rpc_method leecher_methods[] = {
    {"Status", &godwit__v1__status_request__descriptor, handle_status},
    {"Finalize", &godwit__v1__leecher_finalize_request__descriptor, handle_finalize},
};

void leecher_service(struct leecher *l, struct rpc_service *service)
{
    *service = (struct rpc_service){"godwit.v1.Leecher", leecher_methods, 2, l};
}
