/* SPDX-License-Identifier: MIT */
/* The commands that act on a migration or ask the seeder: Leecher.Finalize,
 * Seeder.Info and Seeder.Abort, each printing its reply as one JSON object
 * (scripts parse them; the field names are the RPC's). */
#include "ctl.h"

#include "godwit/v1/seeder.pb-c.h"

#include <stdio.h>

static const char *seeder_state_names[] = {"UNSPECIFIED", "SERVING", "TRACKING", "FROZEN",
                                           "COMPLETE"};

static const char *seeder_state_name(Godwit__V1__SeederState state)
{
    return seeder_state_names[state <= 4 ? state : 0];
}

Godwit__V1__LeecherFinalizeResponse *ctl_finalize_call(const struct ctl *ctl, int timeout_ms)
{
    Godwit__V1__LeecherFinalizeRequest request = GODWIT__V1__LEECHER_FINALIZE_REQUEST__INIT;
    return (void *)ctl_call(ctl, "/godwit.v1.Leecher/Finalize", "Finalize", &request.base,
                            &godwit__v1__leecher_finalize_response__descriptor, timeout_ms);
}

int ctl_finalize(const struct ctl *ctl)
{
    Godwit__V1__LeecherFinalizeResponse *r = ctl_finalize_call(ctl, ctl_timeout_ms(ctl, 60000));
    if (!r)
        return 1;
    printf("{\"downtime_us\":%llu,\"dirty_chunks\":%llu}\n", (unsigned long long)r->downtime_us,
           (unsigned long long)r->dirty_chunks);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return 0;
}

int ctl_seeder_info(const struct ctl *ctl)
{
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    Godwit__V1__InfoResponse *r =
        (void *)ctl_call(ctl, "/godwit.v1.Seeder/Info", "Seeder.Info", &request.base,
                         &godwit__v1__info_response__descriptor, ctl_timeout_ms(ctl, 5000));
    if (!r)
        return 1;
    printf("{\"state\":\"%s\",\"image_id\":\"%s\",\"size\":%llu,\"chunk_size\":%u,"
           "\"sessions\":%u,\"dirty_chunks\":%llu,\"held_writes\":%llu,\"held_bytes\":%llu,"
           "\"held_writes_total\":%llu,\"refused_writes_total\":%llu}\n",
           seeder_state_name(r->state), r->image_id, (unsigned long long)r->size, r->chunk_size,
           r->sessions, (unsigned long long)r->dirty_chunks, (unsigned long long)r->held_writes,
           (unsigned long long)r->held_bytes, (unsigned long long)r->held_writes_total,
           (unsigned long long)r->refused_writes_total);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return 0;
}

int ctl_seeder_abort(const struct ctl *ctl)
{
    Godwit__V1__AbortRequest request = GODWIT__V1__ABORT_REQUEST__INIT;
    Godwit__V1__AbortResponse *r =
        (void *)ctl_call(ctl, "/godwit.v1.Seeder/Abort", "Seeder.Abort", &request.base,
                         &godwit__v1__abort_response__descriptor, ctl_timeout_ms(ctl, 30000));
    if (!r)
        return 1;
    printf("{\"previous_state\":\"%s\",\"released_writes\":%llu,\"ended_sessions\":%llu,"
           "\"image_id\":\"%s\"}\n",
           seeder_state_name(r->previous_state), (unsigned long long)r->released_writes,
           (unsigned long long)r->ended_sessions, r->image_id);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return 0;
}
