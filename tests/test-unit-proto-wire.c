/* SPDX-License-Identifier: MIT */
/* Unit test: the ReadAtResponse codec of rpc/proto-wire.c. What the
 * seeder's encoder builds, the leecher's decoder finds again, however the
 * transport split the reply into slices (the header itself split too), at
 * every varint width; and the decoder refuses what is not a ReadAtResponse
 * of the reply's own length: another tag, a header cut short, a length that
 * disagrees with the reply. The same for a reply with zero ranges
 * (allow_zero_ranges), which protobuf-c's generated code reads alike, and
 * for one whose data is encoded (accept_encoding: fields 22 and 23), and
 * for the checksum fields (want_checksum): the checksum the encoder wrote
 * comes back, and read-checksum.h's streaming digest of a range with zero
 * ranges is XXH3-64 of the range's bytes. */
#include "godwit/v1/seeder.pb-c.h"
#include "proto-wire.h"
#include "read-checksum.h"
#include "rpc-client.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_SLICES = 64 };

/* A reply made of sub-slices of WHOLE, cut at CUTS (ascending offsets). */
struct split {
    grpc_slice slices[MAX_SLICES];
    struct rpc_response reply;
};

static void split_reply(struct split *s, grpc_slice whole, const size_t *cuts, size_t n_cuts)
{
    size_t length = GRPC_SLICE_LENGTH(whole), start = 0, count = 0;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts && cuts[i] < length ? cuts[i] : length;
        if (end > start || (i == n_cuts && count == 0))
            s->slices[count++] = grpc_slice_sub(whole, start, end);
        start = end > start ? end : start;
    }
    s->reply = (struct rpc_response){s->slices, count, length};
}

static void split_free(struct split *s)
{
    for (size_t i = 0; i < s->reply.count; i++)
        grpc_slice_unref(s->slices[i]);
}

/* True if the LENGTH bytes at AT of REPLY equal EXPECTED. */
static bool data_equals(const struct rpc_response *reply, size_t at, const uint8_t *expected,
                        size_t length)
{
    struct iovec iov[MAX_SLICES];
    int n = rpc_response_iov(reply, at, length, iov, MAX_SLICES);
    if (n < 0)
        return false;
    for (int i = 0; i < n; expected += iov[i].iov_len, i++)
        if (memcmp(iov[i].iov_base, expected, iov[i].iov_len) != 0)
            return false;
    return true;
}

/* Encodes LENGTH random bytes, decodes them in one slice, in slices of one
 * byte over the header, and in uneven slices over the data. */
static void round_trip(size_t length, size_t header_len)
{
    uint8_t *bytes = malloc(length ? length : 1);
    CHECK(bytes, "out of memory");
    test_fill_random(bytes, length, length);
    grpc_slice whole;
    uint8_t *data = wire_read_at_slice(&whole, length, false);
    CHECK(GRPC_SLICE_LENGTH(whole) == header_len + length, "%zu bytes: a %zu-byte header", length,
          header_len);
    memcpy(data, bytes, length);
    const size_t one_piece[] = {0};
    const size_t byte_by_byte[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    const size_t uneven[] = {
        1, header_len, header_len + 1, header_len + 7, length / 3 + 2, length / 2 + 5};
    const struct {
        const size_t *cuts;
        size_t n;
        const char *name;
    } ways[] = {{one_piece, 0, "one slice"},
                {byte_by_byte, sizeof byte_by_byte / sizeof *byte_by_byte, "a slice per byte"},
                {uneven, sizeof uneven / sizeof *uneven, "uneven slices"}};
    for (size_t w = 0; w < sizeof ways / sizeof *ways; w++) {
        struct split s;
        split_reply(&s, whole, ways[w].cuts, ways[w].n);
        size_t at;
        uint64_t got;
        CHECK(wire_read_at_data(&s.reply, &at, &got) == 0, "%zu bytes in %s: decodes", length,
              ways[w].name);
        CHECK(at == header_len && got == length, "%zu bytes in %s: data at %zu, %llu bytes", length,
              ways[w].name, at, (unsigned long long)got);
        CHECK(data_equals(&s.reply, at, bytes, length), "%zu bytes in %s: the same bytes", length,
              ways[w].name);
        split_free(&s);
    }
    grpc_slice_unref(whole);
    free(bytes);
}

/* The decoder's verdict on the bytes RAW (LEN of them), split at CUT. */
static int decode_bytes(const uint8_t *raw, size_t len, size_t cut, size_t *at, uint64_t *length)
{
    grpc_slice whole = grpc_slice_from_copied_buffer((const char *)raw, len);
    struct split s;
    split_reply(&s, whole, &cut, 1);
    int r = wire_read_at_data(&s.reply, at, length);
    split_free(&s);
    grpc_slice_unref(whole);
    return r;
}

static void refusals(void)
{
    size_t at;
    uint64_t length;
    struct rpc_response empty = {NULL, 0, 0};
    CHECK(wire_read_at_data(&empty, &at, &length) == 0 && at == 0 && length == 0,
          "an empty reply is an empty ReadAtResponse");
    const uint8_t wrong_tag[] = {0x12, 0x02, 'h', 'i'};
    CHECK(decode_bytes(wrong_tag, sizeof wrong_tag, 1, &at, &length) < 0,
          "field 2 is not the data");
    const uint8_t varint_tag[] = {0x08, 0x02};
    CHECK(decode_bytes(varint_tag, sizeof varint_tag, 1, &at, &length) < 0,
          "field 1 as a varint is not the data");
    const uint8_t tag_only[] = {0x0a};
    CHECK(decode_bytes(tag_only, sizeof tag_only, 1, &at, &length) < 0, "a tag without a length");
    const uint8_t cut_varint[] = {0x0a, 0x80, 0x80};
    CHECK(decode_bytes(cut_varint, sizeof cut_varint, 2, &at, &length) < 0,
          "a length whose varint never ends");
    uint8_t too_long[16] = {0x0a};
    memset(too_long + 1, 0xff, sizeof too_long - 1);
    CHECK(decode_bytes(too_long, sizeof too_long, 5, &at, &length) < 0,
          "a varint longer than 10 bytes");
    const uint8_t short_data[] = {0x0a, 0x05, 'a', 'b', 'c', 'd'};
    CHECK(decode_bytes(short_data, sizeof short_data, 3, &at, &length) < 0,
          "fewer bytes than the length says");
    const uint8_t long_data[] = {0x0a, 0x02, 'a', 'b', 'c'};
    CHECK(decode_bytes(long_data, sizeof long_data, 3, &at, &length) < 0,
          "more bytes than the length says");
    const uint8_t fine[] = {0x0a, 0x03, 'a', 'b', 'c'};
    CHECK(decode_bytes(fine, sizeof fine, 1, &at, &length) == 0 && at == 2 && length == 3,
          "the same reply, well formed, decodes");
}

/* Encodes LENGTH bytes of data and the ranges RANGES (N of them), with
 * CHECKSUM unless it is NULL, then decodes it whole, byte by byte and
 * unevenly, and with protobuf-c. */
static void sparse_round_trip(size_t length, const struct wire_zero_range *ranges, size_t n,
                              const uint64_t *checksum)
{
    uint8_t *bytes = malloc(length ? length : 1);
    CHECK(bytes, "out of memory");
    test_fill_random(bytes, length, length + n);
    struct wire_sparse_reply sparse;
    uint8_t *data = wire_sparse_begin(&sparse, length, n);
    memcpy(data, bytes, length);
    grpc_slice whole = wire_sparse_end(&sparse, length, ranges, n, checksum);
    const size_t byte_by_byte[] = {
        1,          2,          3,          4,          5,          6,          7,
        8,          9,          10,         11,         12,         13,         14,
        15,         16,         17,         18,         19,         20,         length + 3,
        length + 4, length + 5, length + 6, length + 7, length + 8, length + 9, length + 10};
    const size_t uneven[] = {2, length / 2 + 1, length + 2, length + 13};
    const struct {
        const size_t *cuts;
        size_t n;
    } ways[] = {{NULL, 0},
                {byte_by_byte, sizeof byte_by_byte / sizeof *byte_by_byte},
                {uneven, sizeof uneven / sizeof *uneven}};
    for (size_t w = 0; w < sizeof ways / sizeof *ways; w++) {
        struct split s;
        split_reply(&s, whole, ways[w].cuts, ways[w].n);
        size_t at, got_n;
        uint64_t got;
        struct wire_zero_range *got_ranges;
        struct wire_read_at_meta meta;
        CHECK(wire_read_at_decode(&s.reply, &at, &got, &got_ranges, &got_n, &meta) == 0,
              "%zu bytes, %zu ranges, way %zu: decodes", length, n, w);
        CHECK(checksum ? meta.checksum_kind == WIRE_CHECKSUM_XXH3_64 && meta.checksum == *checksum
                       : meta.checksum_kind == 0,
              "%zu bytes, way %zu: the checksum comes back as it was sent", length, w);
        CHECK(got == length && data_equals(&s.reply, at, bytes, length),
              "%zu bytes, %zu ranges, way %zu: the same data", length, n, w);
        CHECK(got_n == n, "%zu ranges, way %zu: %zu decoded", n, w, got_n);
        CHECK(meta.encoding == WIRE_ENCODING_NONE && meta.decoded_length == 0,
              "way %zu: not encoded", w);
        for (size_t i = 0; i < n; i++)
            CHECK(got_ranges[i].offset == ranges[i].offset &&
                      got_ranges[i].length == ranges[i].length,
                  "range %zu the same", i);
        free(got_ranges);
        split_free(&s);
    }
    Godwit__V1__ReadAtResponse *message = godwit__v1__read_at_response__unpack(
        NULL, GRPC_SLICE_LENGTH(whole), GRPC_SLICE_START_PTR(whole));
    CHECK(message && message->data.len == length && message->n_zero_ranges == n,
          "protobuf-c reads %zu bytes and %zu ranges", length, n);
    CHECK(length == 0 || memcmp(message->data.data, bytes, length) == 0, "protobuf-c: same data");
    for (size_t i = 0; i < n; i++)
        CHECK(message->zero_ranges[i]->offset == ranges[i].offset &&
                  message->zero_ranges[i]->length == ranges[i].length,
              "protobuf-c: range %zu the same", i);
    CHECK(checksum ? message->checksum_kind == GODWIT__V1__CHECKSUM_KIND__CHECKSUM_KIND_XXH3_64 &&
                         message->checksum == *checksum
                   : message->checksum_kind == 0,
          "protobuf-c: the same checksum");
    godwit__v1__read_at_response__free_unpacked(message, NULL);
    grpc_slice_unref(whole);
    free(bytes);
}

/* A reply whose data is encoded (fields 22 and 23 after the ranges):
 * both decoders read the encoding and the decoded length back, however the
 * reply is split. */
static void encoded_round_trip(size_t length, uint64_t decoded_length)
{
    const struct wire_zero_range ranges[] = {{0, 4096}, {(uint64_t)1 << 33, 1 << 20}};
    uint8_t *bytes = malloc(length ? length : 1);
    CHECK(bytes, "out of memory");
    test_fill_random(bytes, length, decoded_length);
    struct wire_sparse_reply sparse;
    memcpy(wire_sparse_begin(&sparse, length, 2), bytes, length);
    sparse.encoding = WIRE_ENCODING_ZSTD, sparse.decoded_length = decoded_length;
    grpc_slice whole = wire_sparse_end(&sparse, length, ranges, 2, NULL);
    size_t len = GRPC_SLICE_LENGTH(whole);
    const size_t cuts[] = {len - 12, len - 7, len - 3, len - 1};
    for (size_t w = 0; w < 2; w++) {
        struct split s;
        split_reply(&s, whole, cuts, w ? sizeof cuts / sizeof *cuts : 0);
        size_t at, n;
        uint64_t got;
        struct wire_zero_range *got_ranges;
        struct wire_read_at_meta meta;
        CHECK(wire_read_at_decode(&s.reply, &at, &got, &got_ranges, &n, &meta) == 0,
              "encoded %zu bytes, way %zu: decodes", length, w);
        CHECK(got == length && n == 2 && data_equals(&s.reply, at, bytes, length),
              "encoded %zu bytes, way %zu: the same data and ranges", length, w);
        CHECK(meta.encoding == WIRE_ENCODING_ZSTD && meta.decoded_length == decoded_length,
              "encoded %zu bytes, way %zu: encoding %u, decoded length %llu", length, w,
              meta.encoding, (unsigned long long)meta.decoded_length);
        free(got_ranges);
        split_free(&s);
    }
    Godwit__V1__ReadAtResponse *message =
        godwit__v1__read_at_response__unpack(NULL, len, GRPC_SLICE_START_PTR(whole));
    CHECK(message && message->data.len == length &&
              message->encoding == GODWIT__V1__ENCODING__ENCODING_ZSTD &&
              message->decoded_length == decoded_length,
          "protobuf-c reads the encoding and decoded length of %zu bytes", length);
    godwit__v1__read_at_response__free_unpacked(message, NULL);
    grpc_slice_unref(whole);
    free(bytes);
}

/* The decoder's verdict on RAW with zero ranges; *N ranges found. */
static int decode_sparse(const uint8_t *raw, size_t len, size_t *n)
{
    grpc_slice whole = grpc_slice_from_copied_buffer((const char *)raw, len);
    struct split s;
    size_t cut = len / 2, at;
    uint64_t length;
    struct wire_zero_range *ranges;
    struct wire_read_at_meta meta;
    split_reply(&s, whole, &cut, 1);
    int r = wire_read_at_decode(&s.reply, &at, &length, &ranges, n, &meta);
    free(ranges);
    split_free(&s);
    grpc_slice_unref(whole);
    return r;
}

static void sparse_cases(void)
{
    const struct wire_zero_range some[] = {
        {0, 4096}, {1 << 20, 3 << 20}, {(uint64_t)1 << 40, 262144}, {UINT64_MAX - 1, 1}};
    const uint64_t sums[] = {0, 1, 0x0123456789abcdefull, UINT64_MAX};
    sparse_round_trip(0, NULL, 0, NULL);
    sparse_round_trip(0, some, 1, NULL);
    sparse_round_trip(100, some, 2, NULL);
    sparse_round_trip(65536, some, 4, NULL);
    sparse_round_trip((size_t)1 << 20, some, 3, NULL);
    sparse_round_trip(0, NULL, 0, &sums[0]);
    sparse_round_trip(100, some, 2, &sums[1]);
    sparse_round_trip(65536, some, 4, &sums[2]);
    sparse_round_trip((size_t)1 << 20, NULL, 0, &sums[3]);
    size_t n;
    const uint8_t ranges_first[] = {0x52, 0x04, 0x08, 0x00, 0x10, 0x05, 0x0a, 0x01, 'x'};
    CHECK(decode_sparse(ranges_first, sizeof ranges_first, &n) == 0 && n == 1,
          "a range before the data decodes");
    const uint8_t unknown[] = {0x0a, 0x01, 'x', 0xf0, 0x01, 0x07, 0xf2, 0x01, 0x01, 'y'};
    CHECK(decode_sparse(unknown, sizeof unknown, &n) == 0 && n == 0,
          "unknown fields (30, a varint and bytes) are skipped");
    const uint8_t checksum_varint[] = {0x0a, 0x01, 'x', 0xa0, 0x01, 0x07};
    CHECK(decode_sparse(checksum_varint, sizeof checksum_varint, &n) < 0,
          "field 20 (the checksum) as a varint is refused");
    const uint8_t checksum_cut[] = {0x0a, 0x01, 'x', 0xa1, 0x01, 1, 2, 3, 4, 5, 6, 7};
    CHECK(decode_sparse(checksum_cut, sizeof checksum_cut, &n) < 0,
          "a checksum cut short is refused");
    const uint8_t kind_bytes[] = {0x0a, 0x01, 'x', 0xaa, 0x01, 0x01, 0x01};
    CHECK(decode_sparse(kind_bytes, sizeof kind_bytes, &n) < 0,
          "field 21 (the checksum kind) as bytes is refused");
    const uint8_t two_data[] = {0x0a, 0x01, 'x', 0x0a, 0x01, 'y'};
    CHECK(decode_sparse(two_data, sizeof two_data, &n) < 0, "two data fields are refused");
    const uint8_t range_varint[] = {0x0a, 0x01, 'x', 0x50, 0x01};
    CHECK(decode_sparse(range_varint, sizeof range_varint, &n) < 0,
          "field 10 as a varint is refused");
    const uint8_t range_cut[] = {0x0a, 0x01, 'x', 0x52, 0x04, 0x08, 0x00};
    CHECK(decode_sparse(range_cut, sizeof range_cut, &n) < 0, "a range cut short is refused");
    const uint8_t range_bad[] = {0x0a, 0x01, 'x', 0x52, 0x02, 0x08, 0x80};
    CHECK(decode_sparse(range_bad, sizeof range_bad, &n) < 0,
          "a range whose varint never ends is refused");
}

/* A dense reply with its checksum (the seeder's path without zero
 * ranges) decodes to the data and that checksum, also in protobuf-c. */
static void checksum_round_trip(size_t length)
{
    uint8_t *bytes = malloc(length ? length : 1);
    CHECK(bytes, "out of memory");
    test_fill_random(bytes, length, length + 7);
    grpc_slice whole;
    uint8_t *data = wire_read_at_slice(&whole, length, true);
    memcpy(data, bytes, length);
    uint64_t sum = XXH3_64bits(bytes, length);
    wire_read_at_checksum(&whole, sum);
    struct split s;
    size_t cut = GRPC_SLICE_LENGTH(whole) - 5, at, n;
    split_reply(&s, whole, &cut, 1);
    uint64_t got;
    struct wire_zero_range *ranges;
    struct wire_read_at_meta meta;
    CHECK(wire_read_at_decode(&s.reply, &at, &got, &ranges, &n, &meta) == 0 && n == 0 &&
              got == length && data_equals(&s.reply, at, bytes, length),
          "%zu bytes with a checksum: the data decodes", length);
    CHECK(meta.checksum_kind == WIRE_CHECKSUM_XXH3_64 && meta.checksum == sum,
          "%zu bytes: the checksum decodes", length);
    Godwit__V1__ReadAtResponse *message = godwit__v1__read_at_response__unpack(
        NULL, GRPC_SLICE_LENGTH(whole), GRPC_SLICE_START_PTR(whole));
    CHECK(message && message->data.len == length && message->checksum == sum &&
              message->checksum_kind == GODWIT__V1__CHECKSUM_KIND__CHECKSUM_KIND_XXH3_64,
          "protobuf-c reads %zu bytes and the checksum", length);
    godwit__v1__read_at_response__free_unpacked(message, NULL);
    split_free(&s);
    grpc_slice_unref(whole);
    free(bytes);
}

/* The streaming checksum of a range fed as data pieces and zero runs is
 * XXH3-64 of the whole range as bytes. */
static void logical_checksum(void)
{
    enum { RANGE = 1 << 20 };
    uint8_t *bytes = calloc(1, RANGE);
    CHECK(bytes, "out of memory");
    test_fill_random(bytes, 4096, 1);            /* data  [0, 4K) */
    test_fill_random(bytes + 300000, 70000, 2);  /* zeros [4K, 300000), data */
    test_fill_random(bytes + RANGE - 10, 10, 3); /* zeros, then 10 bytes of data */
    struct read_checksum c;
    read_checksum_begin(&c);
    read_checksum_data(&c, bytes, 4096);
    read_checksum_zeros(&c, 300000 - 4096);
    read_checksum_data(&c, bytes + 300000, 1000);
    read_checksum_data(&c, bytes + 301000, 69000);
    read_checksum_zeros(&c, RANGE - 10 - 370000);
    read_checksum_data(&c, bytes + RANGE - 10, 10);
    CHECK(read_checksum_end(&c) == XXH3_64bits(bytes, RANGE),
          "zero runs hash as the zero bytes they stand for");
    read_checksum_begin(&c);
    CHECK(read_checksum_end(&c) == XXH3_64bits(bytes, 0), "an empty range");
    free(bytes);
}

/* The checksum is XXH3-64 as the reference implementation computes it,
 * whichever vector code the CPU runs (a seeder and a leecher on different
 * CPUs agree): a value of libxxhash 0.8.1's SSE2 build. */
static void checksum_known_value(void)
{
    enum { RANGE = 1 << 20 };
    uint8_t *bytes = malloc(RANGE);
    CHECK(bytes, "out of memory");
    for (size_t i = 0; i < RANGE; i++)
        bytes[i] = (uint8_t)((i * 2654435761u) >> 24);
    struct read_checksum c;
    read_checksum_begin(&c);
    read_checksum_data(&c, bytes, RANGE);
    CHECK(read_checksum_end(&c) == 0xa60868b9a5018405u, "XXH3-64 of 1 MiB of a known pattern");
    CHECK(XXH3_64bits(bytes, RANGE) == 0xa60868b9a5018405u, "the one-shot XXH3-64 of it");
    free(bytes);
}

int main(void)
{
    checksum_known_value();
    round_trip(0, 2);
    round_trip(1, 2);
    round_trip(127, 2);
    round_trip(128, 3);
    round_trip(16383, 3);
    round_trip(16384, 4);
    round_trip(65536, 4);
    round_trip((size_t)1 << 21, 5);
    round_trip((size_t)16 << 20, 5);
    refusals();
    sparse_cases();
    encoded_round_trip(1, 1);
    encoded_round_trip(1000, 1 << 20);
    encoded_round_trip(65536, (uint64_t)16 << 20);
    encoded_round_trip(300, UINT64_MAX);
    checksum_round_trip(0);
    checksum_round_trip(5); /* an inlined slice: the checksum still lands in it */
    checksum_round_trip(65536);
    logical_checksum();
    printf("test-unit-proto-wire: ok\n");
    return 0;
}
