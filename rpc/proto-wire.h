/* SPDX-License-Identifier: MIT */
/* Protobuf wire format by hand: a tiny reader, for messages that have no
 * generated code here (FileDescriptorProto in the reflection service and
 * its test), and the codec of ReadAtResponse, whose data must not be
 * copied more than once on either side. */
#ifndef GODWIT_PROTO_WIRE_H
#define GODWIT_PROTO_WIRE_H

#include <grpc/slice.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rpc_response;

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

/* ReadAtResponse{bytes data = 1}: tag 0x0a, the data's length as a varint,
 * the data. */
enum { WIRE_READ_AT_HEADER_MAX = 11 }; /* the tag and a 10-byte varint */

/* The seeder's side: makes *SLICE a new ReadAtResponse of LENGTH bytes
 * with its header written, and returns where the caller puts the bytes
 * (pread fills it directly). That place is inside *SLICE when the slice is
 * small (inlined): fill it before copying *SLICE anywhere. Unref the slice
 * if it is not sent. WITH_CHECKSUM: the slice also has room for the
 * checksum fields after the data; write them with wire_read_at_checksum. */
uint8_t *wire_read_at_slice(grpc_slice *slice, size_t length, bool with_checksum);

/* ReadAtResponse.checksum (20, fixed64) and checksum_kind (21): 13 bytes,
 * after the data and the zero ranges. */
enum { WIRE_CHECKSUM_XXH3_64 = 1, WIRE_CHECKSUM_LEN = 13 };
/* Writes the checksum fields at the end of *SLICE (made WITH_CHECKSUM). */
void wire_read_at_checksum(grpc_slice *slice, uint64_t checksum);

/* The leecher's side: where the data of the ReadAtResponse in REPLY (the
 * raw reply, in any number of slices) starts (*AT) and how long it is
 * (*LENGTH). An empty reply is an empty ReadAtResponse. -1 if REPLY is not
 * one: another first field, a header cut short, or a length that is not
 * the rest of the reply. */
int wire_read_at_data(const struct rpc_response *reply, size_t *at, uint64_t *length);

/* ReadAtResponse with zero ranges (the request's allow_zero_ranges): the
 * data field first, then one ZeroRange{offset = 1, length = 2} per run of
 * zeroes (field 10). */
struct wire_zero_range {
    uint64_t offset, length;
};

/* The seeder's side: one refcounted slice with room for LENGTH bytes of
 * data and MAX_RANGES zero ranges; returns where the data goes. */
struct wire_sparse_reply {
    grpc_slice slice;
    size_t max_ranges;
    /* Set by the caller before wire_sparse_end if the data is encoded
     * (begin sets them to 0): encoding (22) and decoded_length (23) follow
     * the ranges. */
    uint32_t encoding;
    uint64_t decoded_length;
};
uint8_t *wire_sparse_begin(struct wire_sparse_reply *reply, size_t length, size_t max_ranges);
/* Ends it: DATA_LENGTH bytes of data were kept, then the N ranges (at most
 * max_ranges), then the checksum fields if CHECKSUM is not NULL; returns
 * the slice to send (the caller owns it). */
grpc_slice wire_sparse_end(struct wire_sparse_reply *reply, size_t data_length,
                           const struct wire_zero_range *ranges, size_t n,
                           const uint64_t *checksum);

/* Values of godwit.v1.Encoding: how ReadAtResponse.data is encoded. */
enum { WIRE_ENCODING_NONE = 0, WIRE_ENCODING_ZSTD = 1 };

/* What a ReadAtResponse says of its data besides where it is. */
struct wire_read_at_meta {
    uint32_t encoding;       /* field 22; WIRE_ENCODING_NONE if absent */
    uint64_t decoded_length; /* field 23: the data's length once decoded */
    uint32_t checksum_kind;  /* field 21: WIRE_CHECKSUM_XXH3_64, 0 if absent, or unknown */
    uint64_t checksum;       /* field 20: of the logical bytes, before any decoding */
};

/* The leecher's side: the data (*AT, *LENGTH as wire_read_at_data), the
 * zero ranges (malloc'd into *RANGES, *N of them; free them) and *META of
 * REPLY, in whatever field order; unknown fields are skipped. -1 if
 * malformed (a field cut short, two data fields, a range field that does
 * not parse, a checksum field of the wrong type), with errno ENOMEM if out
 * of memory. */
int wire_read_at_decode(const struct rpc_response *reply, size_t *at, uint64_t *length,
                        struct wire_zero_range **ranges, size_t *n, struct wire_read_at_meta *meta);

#endif
