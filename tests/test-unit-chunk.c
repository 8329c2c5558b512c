/* SPDX-License-Identifier: MIT */
/* Unit test: chunk arithmetic, including unaligned ranges across borders. */
#include "chunk.h"
#include "testlib.h"

#include <errno.h>

static void test_geometry(void)
{
    struct chunk_geometry geo;
    CHECK(chunk_geometry_init(&geo, 10, 3000) == -1 && errno == EINVAL, "non power of two");
    CHECK(chunk_geometry_init(&geo, 10, 2048) == -1, "below 4 KiB");
    CHECK(chunk_geometry_init(&geo, 1 << 20, 65536) == 0, "64K");
    CHECK(geo.chunks == 16 && geo.shift == 16, "16 chunks of 64K, got %llu",
          (unsigned long long)geo.chunks);
    CHECK(chunk_geometry_init(&geo, (1 << 20) + 1, 65536) == 0 && geo.chunks == 17,
          "a partial last chunk counts");
    CHECK(chunk_length(&geo, 16) == 1 && chunk_length(&geo, 15) == 65536, "last chunk length");
    CHECK(chunk_geometry_init(&geo, 0, 4096) == 0 && geo.chunks == 0, "empty image");
}

static void test_spans(void)
{
    struct chunk_geometry geo;
    uint64_t first, last;
    chunk_geometry_init(&geo, 10 * 4096 + 100, 4096);
    chunk_span(&geo, 0, 4096, &first, &last);
    CHECK(first == 0 && last == 0, "aligned single chunk");
    chunk_span(&geo, 4095, 2, &first, &last);
    CHECK(first == 0 && last == 1, "two bytes across a border");
    chunk_span(&geo, 100, 3 * 4096, &first, &last);
    CHECK(first == 0 && last == 3, "unaligned three chunks touch four");
    chunk_span(&geo, 10 * 4096, 100, &first, &last);
    CHECK(first == 10 && last == 10, "tail chunk");
    CHECK(chunk_fully_covered(&geo, 1, 4096, 4096), "exact cover");
    CHECK(!chunk_fully_covered(&geo, 1, 4097, 4096), "shifted by one is partial");
    CHECK(chunk_fully_covered(&geo, 10, 10 * 4096, 100), "short last chunk fully covered");
    CHECK(chunk_range_valid(&geo, geo.size, 0), "empty range at the end is valid");
    CHECK(!chunk_range_valid(&geo, geo.size - 1, 2), "one past the end");
    CHECK(!chunk_range_valid(&geo, UINT64_MAX, 2), "overflowing offset");
}

int main(void)
{
    test_geometry();
    test_spans();
    printf("test-unit-chunk: ok\n");
    return 0;
}
