/* SPDX-License-Identifier: MIT */
/* Chunks the source has no data for: one pass of Seeder.Holes after Track
 * makes every chunk that lies wholly in a hole of the source local without
 * a ReadAt (the local image is sparse: it reads as zeroes there too, or is
 * zeroed where an earlier run left data). A write to such a chunk after
 * Track is in the dirty set, and the next Sync marks it remote again like
 * any other; what the pass cannot learn (an older seeder, an error) is
 * simply pulled. */
#include "leecher.h"

#include "log.h"
#include "seeder-client.h"

#include <errno.h>
#include <string.h>

/* What one run of hole chunks stores: nothing where the local image holds
 * no data, zeroes (a punched hole) where it does. */
struct hole_run {
    struct leecher *l;
    uint64_t offset, length;
};

static int stop_at_data(void *arg, uint64_t offset, uint64_t length, bool hole)
{
    (void)arg, (void)offset, (void)length;
    return hole ? 0 : 1;
}

static int store_hole(void *arg)
{
    const struct hole_run *run = arg;
    if (image_describe(&run->l->image, run->offset, run->offset + run->length, stop_at_data,
                       NULL) == 0)
        return 0;
    return image_zero(&run->l->image, run->length, run->offset);
}

static int store_nothing(void *arg)
{
    (void)arg;
    return 0;
}

/* Makes the chunks wholly inside [OFFSET, END) local; returns how many.
 * One question to the local image first: where all of it is a hole (a
 * fresh image is), no chunk needs zeroing, and no chunk is asked alone.
 * Nothing else writes the image meanwhile: the pass runs before the
 * pullers start, with the export closed. */
static uint64_t take_hole(struct leecher *l, uint64_t offset, uint64_t end)
{
    const struct chunk_geometry *geo = &l->geo;
    uint64_t first = (offset + geo->chunk_size - 1) / geo->chunk_size;
    uint64_t last = end == geo->size ? geo->chunks : end / geo->chunk_size; /* exclusive */
    if (first >= last)
        return 0;
    uint64_t to = last == geo->chunks ? geo->size : chunk_offset(geo, last);
    bool all_hole =
        image_describe(&l->image, chunk_offset(geo, first), to, stop_at_data, NULL) == 0;
    uint64_t taken = 0;
    for (uint64_t c = first; c < last; c++) {
        uint32_t ticket;
        struct hole_run run = {l, chunk_offset(geo, c), chunk_length(geo, c)};
        if (!chunk_map_claim(l->map, c, &ticket))
            continue; /* local already */
        if (chunk_map_commit(l->map, c, ticket, all_hole ? store_nothing : store_hole, &run) == 0)
            taken++;
        else
            chunk_map_release(l->map, c, ticket); /* pulled as usual */
    }
    return taken;
}

/* One Holes call from OFFSET; the next offset, or 0 to stop. */
static uint64_t holes_from(struct leecher *l, uint64_t offset, uint64_t *taken)
{
    struct rpc_result result;
    Godwit__V1__HolesResponse *reply =
        seeder_client_holes(l->seeder, l->image_id, offset, l->geo.size - offset, &result);
    if (!reply) {
        if (result.status == GRPC_STATUS_UNIMPLEMENTED)
            log_info(l->log, "the seeder cannot list its holes (an older godwit): every chunk "
                             "is pulled");
        else
            log_warn(l->log, "Seeder.Holes failed (%s): every chunk is pulled", result.message);
        return 0;
    }
    uint64_t next = reply->end, at = offset;
    for (size_t i = 0; i < reply->n_holes && next > offset && next <= l->geo.size; i++) {
        const Godwit__V1__ZeroRange *h = reply->holes[i];
        if (h->offset < at || h->length > next - h->offset) {
            log_warn(l->log, "a Holes reply with a range out of order: the rest is pulled");
            next = 0;
            break;
        }
        *taken += take_hole(l, h->offset, h->offset + h->length);
        at = h->offset + h->length;
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return next > offset && next <= l->geo.size ? next : 0;
}

void leecher_take_holes(struct leecher *l)
{
    uint64_t start = leecher_now_us(), taken = 0, offset = 0;
    while (offset < l->geo.size && (offset = holes_from(l, offset, &taken)) != 0)
        ;
    log_event(l->log, "holes",
              json_pack("{s:I,s:I}", "chunks", (json_int_t)taken, "us",
                        (json_int_t)(leecher_now_us() - start)));
}
