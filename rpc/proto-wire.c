/* SPDX-License-Identifier: MIT */
/* Protobuf wire format by hand: a field reader and the ReadAtResponse
 * codec. */
#include "proto-wire.h"

#include "rpc-client.h"

#include <string.h>

enum { READ_AT_TAG = 0x0a }; /* field 1, wire type 2 (length-delimited) */

static int read_varint(struct bytes *in, uint64_t *value)
{
    *value = 0;
    for (unsigned shift = 0; shift < 64 && in->len > 0; shift += 7) {
        uint8_t byte = *in->data++;
        in->len--;
        *value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return 0;
    }
    return -1;
}

int wire_next(struct bytes *in, struct field *f)
{
    uint64_t key;
    if (in->len == 0)
        return 1;
    if (read_varint(in, &key) < 0)
        return -1;
    f->number = (uint32_t)(key >> 3);
    f->type = (uint32_t)(key & 7);
    switch (f->type) {
    case 0:
        return read_varint(in, &f->varint);
    case 1:
    case 5: {
        size_t n = f->type == 1 ? 8 : 4;
        if (in->len < n)
            return -1;
        in->data += n, in->len -= n;
        return 0;
    }
    case 2:
        if (read_varint(in, &f->varint) < 0 || f->varint > in->len)
            return -1;
        f->value = (struct bytes){in->data, (size_t)f->varint};
        in->data += f->varint, in->len -= (size_t)f->varint;
        return 0;
    default:
        return -1;
    }
}

/* Writes VALUE as a varint at P; returns how many bytes it took. */
static size_t put_varint(uint8_t *p, uint64_t value)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((value & 0x7f) | (value > 0x7f ? 0x80 : 0));
        value >>= 7;
    } while (value);
    return n;
}

uint8_t *wire_read_at_slice(grpc_slice *slice, size_t length)
{
    uint8_t header[WIRE_READ_AT_HEADER_MAX] = {READ_AT_TAG};
    size_t header_len = 1 + put_varint(header + 1, length);
    *slice = grpc_slice_malloc(header_len + length);
    memcpy(GRPC_SLICE_START_PTR(*slice), header, header_len);
    return GRPC_SLICE_START_PTR(*slice) + header_len;
}

/* Copies the first bytes of REPLY (at most WIRE_READ_AT_HEADER_MAX) into
 * HEADER; returns how many. */
static size_t first_bytes(const struct rpc_response *reply, uint8_t *header)
{
    struct iovec iov[WIRE_READ_AT_HEADER_MAX];
    size_t want = reply->length < WIRE_READ_AT_HEADER_MAX ? reply->length : WIRE_READ_AT_HEADER_MAX;
    int n = rpc_response_iov(reply, 0, want, iov, WIRE_READ_AT_HEADER_MAX);
    size_t got = 0;
    for (int i = 0; i < n; got += iov[i].iov_len, i++)
        memcpy(header + got, iov[i].iov_base, iov[i].iov_len);
    return got;
}

int wire_read_at_data(const struct rpc_response *reply, size_t *at, uint64_t *length)
{
    *at = 0, *length = 0;
    if (reply->length == 0)
        return 0;
    uint8_t header[WIRE_READ_AT_HEADER_MAX];
    struct bytes in = {header, first_bytes(reply, header)};
    if (in.len == 0 || header[0] != READ_AT_TAG)
        return -1;
    in.data++, in.len--;
    if (read_varint(&in, length) < 0)
        return -1;
    *at = (size_t)(in.data - header);
    return *length == reply->length - *at ? 0 : -1;
}
