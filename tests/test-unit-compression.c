/* SPDX-License-Identifier: MIT */
/* Unit test: zstd for ReadAt data (common/compression.c), the leecher's
 * decode path above all. A frame decodes to its bytes however the reply
 * split it; a frame with any one byte changed (unless the format ignores
 * that bit), cut short, followed by more bytes, or promising another length
 * is refused, never decoded to other bytes; data
 * that does not shrink (random bytes) is not compressed; contexts are
 * reused across calls. */
#include "compression.h"
#include "testlib.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { LEN = 256 << 10, SMALL = 32 << 10 }; /* SMALL: every byte of its frame is changed */

/* Text-like bytes: words from a small list, so they compress. */
static void fill_words(uint8_t *buf, size_t len)
{
    static const char *const words[] = {"chunk ", "image ", "seeder ", "leecher ", "dirty ",
                                        "page ",  "zero ",  "freeze ", "sync ",    "copy "};
    uint64_t x = 12345;
    for (size_t at = 0; at < len;) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        const char *w = words[(x >> 33) % 10];
        for (size_t i = 0; w[i] && at < len; i++)
            buf[at++] = (uint8_t)w[i];
    }
}

/* decompress_iov of FRAME (SIZE bytes) cut in PIECES equal parts. */
static int decode_in(const uint8_t *frame, size_t size, int pieces, uint8_t *out, size_t len)
{
    struct iovec iov[16];
    size_t step = size / (size_t)pieces + 1, at = 0;
    int n = 0;
    for (; at < size && n < 16; n++, at += step)
        iov[n] = (struct iovec){(void *)(frame + at), size - at < step ? size - at : step};
    return decompress_iov(iov, n, out, len);
}

static void round_trips(struct compressor *c, const uint8_t *in, uint8_t *frame, size_t *size)
{
    size_t cap = compressor_bound(LEN);
    uint8_t *out = malloc(LEN);
    CHECK(out, "out of memory");
    for (int i = 0; i < 3; i++) { /* the second and third reuse the pooled context */
        *size = compressor_run(c, in, LEN, frame, cap);
        CHECK(*size > 0 && *size < LEN / 2, "text compresses to %zu of %d bytes", *size, LEN);
    }
    for (int pieces = 1; pieces <= 7; pieces += 3) {
        memset(out, 0xaa, LEN);
        CHECK(decode_in(frame, *size, pieces, out, LEN) == 0, "decodes in %d pieces", pieces);
        CHECK(memcmp(out, in, LEN) == 0, "the same bytes, in %d pieces", pieces);
    }
    free(out);
}

/* Every one-byte change of FRAME (made from IN) is refused with EBADMSG,
 * or decodes to IN all the same (a bit the format ignores): never to other
 * bytes. */
static void corruptions(struct compressor *c, const uint8_t *in)
{
    size_t cap = compressor_bound(SMALL);
    uint8_t *frame = malloc(cap), *bad = malloc(cap + 1), *out = malloc(LEN);
    CHECK(frame && bad && out, "out of memory");
    size_t size = compressor_run(c, in, SMALL, frame, cap);
    CHECK(size > 0, "%d bytes of text compress", SMALL);
    CHECK(bad && out, "out of memory");
    size_t refused = 0;
    for (size_t i = 0; i < size; i++) {
        memcpy(bad, frame, size);
        bad[i] ^= (uint8_t)(1u << (i % 8));
        errno = 0;
        if (decode_in(bad, size, 1 + (int)(i % 3), out, SMALL) == 0) {
            CHECK(memcmp(out, in, SMALL) == 0, "byte %zu of %zu changed: other bytes decoded", i,
                  size);
            continue;
        }
        CHECK(errno == EBADMSG, "byte %zu changed: errno %d, not EBADMSG", i, errno);
        refused++;
    }
    CHECK(refused >= size - size / 100, "only %zu of %zu changed frames refused", refused, size);
    memcpy(bad, frame, size);
    CHECK(decode_in(bad, size - 1, 1, out, SMALL) < 0 && errno == EBADMSG, "cut short: refused");
    CHECK(decode_in(bad, size / 2, 2, out, SMALL) < 0 && errno == EBADMSG, "half: refused");
    bad[size] = 0;
    CHECK(decode_in(bad, size + 1, 2, out, SMALL) < 0 && errno == EBADMSG,
          "a byte after the frame: refused");
    CHECK(decode_in(bad, size, 1, out, SMALL - 1) < 0 && errno == EBADMSG,
          "one byte fewer than the frame holds: refused");
    CHECK(decode_in(bad, size, 1, out, SMALL + 1) < 0 && errno == EBADMSG,
          "one byte more than the frame holds: refused");
    CHECK(decode_in(bad, 0, 1, out, SMALL) < 0, "nothing: refused");
    free(frame), free(bad), free(out);
}

int main(void)
{
    struct compressor *c = compressor_new(1);
    CHECK(c, "compressor_new");
    size_t cap = compressor_bound(LEN), size;
    uint8_t *in = malloc(LEN), *frame = malloc(cap);
    CHECK(in && frame, "out of memory");
    fill_words(in, LEN);
    round_trips(c, in, frame, &size);
    corruptions(c, in);
    test_fill_random(in, LEN, 7);
    CHECK(compressor_run(c, in, LEN, frame, cap) == 0, "random bytes: not compressed");
    CHECK(compressor_run(c, in, 1, frame, cap) == 0, "one byte: not compressed");
    compressor_free(c);
    struct compressor *fast = compressor_new(-3);
    fill_words(in, LEN);
    CHECK(fast && compressor_run(fast, in, LEN, frame, cap) > 0, "a negative level compresses");
    compressor_free(fast);
    free(in), free(frame);
    printf("test-unit-compression: ok\n");
    return 0;
}
