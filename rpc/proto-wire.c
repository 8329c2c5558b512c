/* SPDX-License-Identifier: MIT */
/* Protobuf wire format by hand: a field reader and the ReadAtResponse
 * codec. */
#include "proto-wire.h"

#include "rpc-client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
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

uint8_t *wire_read_at_slice(grpc_slice *slice, size_t length, bool with_checksum)
{
    uint8_t header[WIRE_READ_AT_HEADER_MAX] = {READ_AT_TAG};
    size_t header_len = 1 + put_varint(header + 1, length);
    *slice = grpc_slice_malloc(header_len + length + (with_checksum ? WIRE_CHECKSUM_LEN : 0));
    memcpy(GRPC_SLICE_START_PTR(*slice), header, header_len);
    return GRPC_SLICE_START_PTR(*slice) + header_len;
}

enum {
    CHECKSUM_KEY = (20 << 3) | 1, /* fixed64: 0xa1 0x01 as a varint */
    CHECKSUM_KIND_KEY = 21 << 3,  /* varint: 0xa8 0x01 */
};

/* Writes the checksum fields (WIRE_CHECKSUM_LEN bytes) at P. */
static void put_checksum(uint8_t *p, uint64_t checksum)
{
    p += put_varint(p, CHECKSUM_KEY);
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(checksum >> (8 * i)); /* fixed64: little-endian */
    p += put_varint(p, CHECKSUM_KIND_KEY);
    *p = WIRE_CHECKSUM_XXH3_64;
}

void wire_read_at_checksum(grpc_slice *slice, uint64_t checksum)
{
    put_checksum(GRPC_SLICE_END_PTR(*slice) - WIRE_CHECKSUM_LEN, checksum);
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

enum {
    ZERO_RANGE_TAG = 0x52, /* field 10, wire type 2 */
    ZERO_RANGE_MAX = 24,   /* tag, length, and two tagged 10-byte varints */
    FIELD_HEADER_MAX = 20, /* a key and a length, 10-byte varints each */
    ENCODING_FIELD = 22,   /* varint */
    DECODED_LENGTH_FIELD = 23,
    ENCODING_MAX = 24, /* both, each a 2-byte key and a 10-byte varint */
};

uint8_t *wire_sparse_begin(struct wire_sparse_reply *reply, size_t length, size_t max_ranges)
{
    reply->max_ranges = max_ranges;
    reply->encoding = WIRE_ENCODING_NONE, reply->decoded_length = 0;
    /* Never small enough to be inlined, so sub-slices share its memory. */
    reply->slice = grpc_slice_malloc(WIRE_READ_AT_HEADER_MAX + length +
                                     (max_ranges ? max_ranges : 1) * ZERO_RANGE_MAX +
                                     WIRE_CHECKSUM_LEN + ENCODING_MAX);
    return GRPC_SLICE_START_PTR(reply->slice) + WIRE_READ_AT_HEADER_MAX;
}

grpc_slice wire_sparse_end(struct wire_sparse_reply *reply, size_t data_length,
                           const struct wire_zero_range *ranges, size_t n, const uint64_t *checksum)
{
    uint8_t *data = GRPC_SLICE_START_PTR(reply->slice) + WIRE_READ_AT_HEADER_MAX;
    uint8_t header[WIRE_READ_AT_HEADER_MAX] = {READ_AT_TAG};
    size_t header_len = 1 + put_varint(header + 1, data_length);
    memcpy(data - header_len, header, header_len);
    uint8_t *p = data + data_length;
    for (size_t i = 0; i < n && i < reply->max_ranges; i++) {
        uint8_t body[ZERO_RANGE_MAX];
        size_t len = 0;
        body[len++] = 0x08;
        len += put_varint(body + len, ranges[i].offset);
        body[len++] = 0x10;
        len += put_varint(body + len, ranges[i].length);
        *p++ = ZERO_RANGE_TAG;
        p += put_varint(p, len);
        memcpy(p, body, len), p += len;
    }
    if (checksum) {
        put_checksum(p, *checksum);
        p += WIRE_CHECKSUM_LEN;
    }
    if (reply->encoding != WIRE_ENCODING_NONE) {
        p += put_varint(p, ENCODING_FIELD << 3);
        p += put_varint(p, reply->encoding);
        p += put_varint(p, DECODED_LENGTH_FIELD << 3);
        p += put_varint(p, reply->decoded_length);
    }
    size_t start = WIRE_READ_AT_HEADER_MAX - header_len;
    grpc_slice out =
        grpc_slice_sub(reply->slice, start, (size_t)(p - GRPC_SLICE_START_PTR(reply->slice)));
    grpc_slice_unref(reply->slice);
    return out;
}

/* Copies up to WANT bytes of REPLY from POS into BUF; returns how many. */
static size_t copy_out(const struct rpc_response *reply, size_t pos, uint8_t *buf, size_t want)
{
    struct iovec iov[ZERO_RANGE_MAX + FIELD_HEADER_MAX];
    if (pos >= reply->length)
        return 0;
    want = want < reply->length - pos ? want : reply->length - pos;
    int n = rpc_response_iov(reply, pos, want, iov, (int)(sizeof iov / sizeof *iov));
    size_t got = 0;
    for (int i = 0; i < n; got += iov[i].iov_len, i++)
        memcpy(buf + got, iov[i].iov_base, iov[i].iov_len);
    return got;
}

/* Parses one ZeroRange message of LEN bytes at POS of REPLY. */
static int zero_range(const struct rpc_response *reply, size_t pos, uint64_t len,
                      struct wire_zero_range *range)
{
    uint8_t buf[ZERO_RANGE_MAX];
    if (len > sizeof buf || copy_out(reply, pos, buf, (size_t)len) != len)
        return -1;
    struct bytes in = {buf, (size_t)len};
    struct field f = {0}; /* gcc -O3 cannot see wire_next fill varint before its use */
    int r;
    *range = (struct wire_zero_range){0};
    while ((r = wire_next(&in, &f)) == 0) {
        if (f.type == 0 && f.number == 1)
            range->offset = f.varint;
        else if (f.type == 0 && f.number == 2)
            range->length = f.varint;
    }
    return r < 0 ? -1 : 0;
}

static int add_range(struct wire_zero_range **ranges, size_t *n, struct wire_zero_range range)
{
    if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4...: grow to twice */
        struct wire_zero_range *more = realloc(*ranges, (*n ? *n * 2 : 1) * sizeof **ranges);
        if (!more)
            return errno = ENOMEM, -1;
        *ranges = more;
    }
    (*ranges)[(*n)++] = range;
    return 0;
}

/* What wire_read_at_decode found so far. */
struct decoded {
    bool have_data;
    size_t *at;
    uint64_t *length;
    struct wire_zero_range **ranges;
    size_t *n;
    struct wire_read_at_meta *meta;
};

/* A varint field of the meta (encoding, decoded length); others are skipped. */
static void decode_meta(struct wire_read_at_meta *meta, uint32_t number, uint64_t value)
{
    if (number == ENCODING_FIELD)
        meta->encoding = value > UINT32_MAX ? UINT32_MAX : (uint32_t)value;
    else if (number == DECODED_LENGTH_FIELD)
        meta->decoded_length = value;
}

/* The fixed64 at POS of REPLY (8 bytes, little-endian). */
static int fixed64_at(const struct rpc_response *reply, size_t pos, uint64_t *value)
{
    uint8_t buf[8];
    if (copy_out(reply, pos, buf, sizeof buf) != sizeof buf)
        return -1;
    *value = 0;
    for (int i = 7; i >= 0; i--)
        *value = *value << 8 | buf[i];
    return 0;
}

/* A known field of the wrong wire type: the reply is not a ReadAtResponse. */
static bool wrong_type(uint32_t number, uint32_t type)
{
    return ((number == 1 || number == 10) && type != 2) || (number == 20 && type != 1) ||
           (number == 21 && type != 0);
}

/* Reads the field at *POS of REPLY: its data, range, checksum or meta, or skips it. */
static int decode_field(const struct rpc_response *reply, size_t *pos, struct decoded *d)
{
    uint8_t header[FIELD_HEADER_MAX];
    struct bytes in = {header, copy_out(reply, *pos, header, sizeof header)};
    uint64_t key, value = 0;
    if (read_varint(&in, &key) < 0)
        return -1;
    uint32_t type = key & 7, number = (uint32_t)(key >> 3);
    size_t skip = type == 1 ? 8 : type == 5 ? 4 : 0;
    if (type > 5 || type == 3 || type == 4 ||
        ((type == 0 || type == 2) && read_varint(&in, &value) < 0))
        return -1;
    size_t start = *pos + (size_t)(in.data - header), rest = reply->length - start;
    skip = type == 2 ? (value <= rest ? (size_t)value : SIZE_MAX) : skip;
    if (skip > rest || wrong_type(number, type))
        return -1;
    if (number == 1) {
        if (d->have_data)
            return -1;
        d->have_data = true, *d->at = start, *d->length = value;
    } else if (number == 10) {
        struct wire_zero_range range;
        if (zero_range(reply, start, value, &range) < 0 || add_range(d->ranges, d->n, range) < 0)
            return -1;
    } else if (number == 20) {
        if (fixed64_at(reply, start, &d->meta->checksum) < 0)
            return -1;
    } else if (number == 21) {
        d->meta->checksum_kind = value > UINT32_MAX ? UINT32_MAX : (uint32_t)value;
    } else if (type == 0) {
        decode_meta(d->meta, number, value);
    }
    *pos = start + skip;
    return 0;
}

int wire_read_at_decode(const struct rpc_response *reply, size_t *at, uint64_t *length,
                        struct wire_zero_range **ranges, size_t *n, struct wire_read_at_meta *meta)
{
    struct decoded d = {false, at, length, ranges, n, meta};
    *at = 0, *length = 0, *ranges = NULL, *n = 0;
    *meta = (struct wire_read_at_meta){WIRE_ENCODING_NONE, 0, 0, 0};
    for (size_t pos = 0; pos < reply->length;)
        if (decode_field(reply, &pos, &d) < 0) {
            free(*ranges);
            *ranges = NULL, *n = 0;
            return -1;
        }
    return 0;
}
