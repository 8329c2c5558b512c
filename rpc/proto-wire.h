/* SPDX-License-Identifier: MIT */
/* A tiny reader of protobuf wire format, for parsing messages that have no
 * generated code here (FileDescriptorProto in the reflection service and
 * its test). */
#ifndef GODWIT_PROTO_WIRE_H
#define GODWIT_PROTO_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* A view of bytes; reading advances it. */
struct bytes {
    const uint8_t *data;
    size_t len;
};

/* One field. */
struct field {
    uint32_t number;
    uint32_t type;      /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    uint64_t varint;    /* type 0; the length for type 2 */
    struct bytes value; /* type 2 */
};

/* Reads the next field of IN; 0 on success, 1 at the end, -1 if malformed. */
int wire_next(struct bytes *in, struct field *f);

#endif
