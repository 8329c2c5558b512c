/* SPDX-License-Identifier: MIT */
/* libFuzzer target: every protobuf message either daemon decodes from the
 * network (requests of Seeder, Leecher, Health and both reflection
 * services; the replies the leecher decodes). A decoded message is packed
 * again and must pack to exactly its computed size. (Its repacked form is
 * not required to decode: protobuf-c keeps an unknown field numbered 0,
 * which it then refuses to decode; the daemons never re-encode what they
 * receive. See docs/fuzzing.md.) */
#include "godwit/v1/leecher.pb-c.h"
#include "godwit/v1/seeder.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

#include <stdint.h>
#include <stdlib.h>

static const ProtobufCMessageDescriptor *const decoded[] = {
    &godwit__v1__info_request__descriptor,
    &godwit__v1__info_response__descriptor,
    &godwit__v1__read_at_request__descriptor,
    &godwit__v1__read_at_response__descriptor,
    &godwit__v1__track_request__descriptor,
    &godwit__v1__track_response__descriptor,
    &godwit__v1__sync_request__descriptor,
    &godwit__v1__sync_response__descriptor,
    &godwit__v1__finalize_request__descriptor,
    &godwit__v1__finalize_response__descriptor,
    &godwit__v1__complete_request__descriptor,
    &godwit__v1__status_request__descriptor,
    &godwit__v1__leecher_finalize_request__descriptor,
    &grpc__health__v1__health_check_request__descriptor,
    &grpc__reflection__v1alpha__server_reflection_request__descriptor,
    &grpc__reflection__v1__server_reflection_request__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte picks the message type; the rest is the message. */
    const ProtobufCMessageDescriptor *desc = decoded[data[0] % (sizeof decoded / sizeof *decoded)];
    ProtobufCMessage *message = protobuf_c_message_unpack(desc, NULL, size - 1, data + 1);
    if (!message)
        return 0;
    size_t packed_size = protobuf_c_message_get_packed_size(message);
    uint8_t *packed = malloc(packed_size ? packed_size : 1);
    if (protobuf_c_message_pack(message, packed) != packed_size)
        abort();
    ProtobufCMessage *again = protobuf_c_message_unpack(desc, NULL, packed_size, packed);
    if (again)
        protobuf_c_message_free_unpacked(again, NULL);
    protobuf_c_message_free_unpacked(message, NULL);
    free(packed);
    return 0;
}
