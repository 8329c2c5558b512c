/* SPDX-License-Identifier: MIT */
/* Unit test: the chunk map's word changes with every state change, pull
 * and re-dirtying, and only then: what the state file's record without a
 * flush relies on (a LOCAL chunk with the word of the last flush holds the
 * bytes that flush wrote). Stale pages, and a read's pages stored before
 * the rest of their chunk, also while the app overwrites chunks on
 * another thread (run under TSan too). */
#include "chunk-map.h"
#include "testlib.h"

#include <pthread.h>

static int store_ok(void *arg)
{
    ++*(int *)arg;
    return 0;
}

static void test_word_follows_changes(void)
{
    struct chunk_map *map = chunk_map_new(4);
    CHECK(map, "chunk_map_new");
    int stores = 0;
    uint32_t ticket, before = chunk_map_word(map, 0);
    CHECK(!chunk_word_is_local(before), "a new chunk is remote");
    CHECK(chunk_map_claim(map, 0, &ticket), "claim");
    chunk_map_release(map, 0, ticket);
    CHECK(chunk_map_word(map, 0) == before, "a released claim leaves the word as it was");
    CHECK(chunk_map_claim(map, 0, &ticket), "claim again");
    CHECK(chunk_map_commit(map, 0, ticket, store_ok, &stores) == 0 && stores == 1, "commit");
    uint32_t pulled = chunk_map_word(map, 0);
    CHECK(chunk_word_is_local(pulled) && pulled != before, "a committed pull changes the word");
    CHECK(chunk_map_word(map, 0) == pulled, "nothing happened: the same word");
    chunk_map_mark_remote(map, 0, 0);
    CHECK(chunk_map_claim(map, 0, &ticket), "claim after re-dirtying");
    CHECK(chunk_map_commit(map, 0, ticket, store_ok, &stores) == 0, "pull again");
    uint32_t again = chunk_map_word(map, 0);
    CHECK(chunk_word_is_local(again) && again != pulled,
          "a re-dirtied and re-pulled chunk has another word than before");
    chunk_map_mark_written(map, 0);
    CHECK(chunk_map_word(map, 0) != again && chunk_word_is_local(chunk_map_word(map, 0)),
          "a destination write changes a LOCAL chunk's word");
    uint32_t written = chunk_map_word(map, 0);
    CHECK(chunk_map_overwrite(map, 0, store_ok, &stores) == 0, "overwrite");
    CHECK(chunk_map_word(map, 0) != written, "a whole-chunk overwrite changes the word");
    chunk_map_free(map);
}

static void test_stale_pull_keeps_word(void)
{
    struct chunk_map *map = chunk_map_new(1);
    CHECK(map, "chunk_map_new");
    int stores = 0;
    uint32_t ticket;
    CHECK(chunk_map_claim(map, 0, &ticket), "claim");
    chunk_map_mark_remote(map, 0, 0); /* re-dirtied while the pull was under way */
    uint32_t dirty = chunk_map_word(map, 0);
    CHECK(chunk_map_commit(map, 0, ticket, store_ok, &stores) == 1 && stores == 0,
          "a stale pull is dropped");
    CHECK(chunk_map_word(map, 0) == dirty && !chunk_word_is_local(dirty),
          "a dropped pull leaves the word (remote)");
    chunk_map_free(map);
}

/* Stale pages: a new chunk is all stale; a local chunk re-dirtied in some
 * pages is stale only there; more marks add pages; a mark during a pull of
 * those pages keeps the rest current; a whole mark makes it all stale. */
static void test_stale_pages(void)
{
    struct chunk_map *map = chunk_map_new(2);
    CHECK(map, "chunk_map_new");
    int stores = 0;
    uint32_t ticket;
    CHECK(chunk_map_stale_pages(map, 0) == UINT64_MAX, "a new chunk is stale throughout");
    CHECK(chunk_map_claim(map, 0, &ticket) &&
              chunk_map_commit(map, 0, ticket, store_ok, &stores) == 0,
          "pull");
    CHECK(chunk_map_mark_remote(map, 0, 0x30), "re-dirtied after a pull");
    CHECK(chunk_map_stale_pages(map, 0) == 0x30, "only pages 4 and 5 are stale: %#llx",
          (unsigned long long)chunk_map_stale_pages(map, 0));
    chunk_map_mark_remote(map, 0, 0x1);
    CHECK(chunk_map_stale_pages(map, 0) == 0x31, "a second mark adds page 0");
    CHECK(chunk_map_claim(map, 0, &ticket), "claim the stale pages");
    chunk_map_mark_remote(map, 0, 1ull << 63); /* while they are pulled */
    CHECK(chunk_map_commit(map, 0, ticket, store_ok, &stores) == 1, "that pull is dropped");
    CHECK(chunk_map_stale_pages(map, 0) == (0x31 | 1ull << 63), "all three marks are stale");
    chunk_map_mark_remote(map, 0, 0);
    CHECK(chunk_map_stale_pages(map, 0) == UINT64_MAX, "a whole mark: all stale");
    CHECK(chunk_map_claim(map, 0, &ticket) &&
              chunk_map_commit(map, 0, ticket, store_ok, &stores) == 0,
          "pull again");
    chunk_map_mark_remote(map, 0, 0x2);
    CHECK(chunk_map_stale_pages(map, 0) == 0x2, "a local chunk forgets older marks");
    chunk_map_free(map);
}

static int store_fails(void *arg)
{
    ++*(int *)arg;
    return -1;
}

/* A read's pages (chunk_map_commit_pages): stored and current while the
 * chunk stays REMOTE or PULLING; dropped, unstored, once the chunk is
 * local, re-dirtied or overwritten; a failed store leaves them stale; the
 * chunk turns LOCAL when they complete it and no pull holds it, else at
 * that pull's commit (which a page commit never invalidates). */
static void test_read_pages(void)
{
    struct chunk_map *map = chunk_map_new(4);
    CHECK(map, "chunk_map_new");
    uint64_t every = UINT64_MAX;
    int stores = 0;
    uint32_t seen = chunk_map_word(map, 0), ticket;
    CHECK(chunk_map_commit_pages(map, 0, seen, 0x6, every, store_ok, &stores) == 0 && stores == 1,
          "pages of a remote chunk are stored");
    CHECK(chunk_map_stale_pages(map, 0) == ~0x6ull, "pages 1 and 2 are current, the rest stale");
    CHECK(chunk_map_state(map, 0) == CHUNK_REMOTE && chunk_map_local(map) == 0,
          "a partly fetched chunk is not local");
    CHECK(chunk_map_word(map, 0) == seen, "stored pages leave the word (the state file's view)");
    CHECK(chunk_map_commit_pages(map, 0, seen, 0x8, every, store_fails, &stores) == -1,
          "a failed store is the store's error");
    CHECK(chunk_map_stale_pages(map, 0) == ~0x6ull, "pages that failed to store stay stale");

    CHECK(chunk_map_claim(map, 0, &ticket), "claim the rest");
    CHECK(chunk_map_commit_pages(map, 0, seen, ~0x6ull, every, store_ok, &stores) == 0,
          "a read's pages while the rest is being pulled");
    CHECK(chunk_map_state(map, 0) == CHUNK_PULLING,
          "every page current, but the claimed pull turns it LOCAL, not the read");
    CHECK(chunk_map_commit(map, 0, ticket, store_ok, &stores) == 0 &&
              chunk_map_state(map, 0) == CHUNK_LOCAL && chunk_map_local(map) == 1,
          "the rest's pull still commits");
    stores = 0;
    CHECK(chunk_map_commit_pages(map, 0, seen, 0x1, every, store_ok, &stores) == 1 && stores == 0,
          "pages of a local chunk are dropped unstored");

    seen = chunk_map_word(map, 1);
    chunk_map_mark_remote(map, 1, 0); /* re-dirtied after SEEN was read: a new version */
    CHECK(chunk_map_commit_pages(map, 1, seen, 0x1, every, store_ok, &stores) == 1 && stores == 0,
          "pages fetched before a re-dirtying are dropped");
    seen = chunk_map_word(map, 1);
    CHECK(chunk_map_overwrite(map, 1, store_ok, &stores) == 0, "the destination app overwrites");
    stores = 0;
    CHECK(chunk_map_commit_pages(map, 1, seen, 0x1, every, store_ok, &stores) == 1 && stores == 0,
          "pages fetched before an overwrite are dropped: the app's bytes stay");

    uint64_t short_chunk = 0xff; /* a last chunk of 8 pages */
    seen = chunk_map_word(map, 2);
    CHECK(chunk_map_commit_pages(map, 2, seen, 0x0f, short_chunk, store_ok, &stores) == 0 &&
              chunk_map_state(map, 2) == CHUNK_REMOTE,
          "half of a short chunk");
    CHECK(chunk_map_commit_pages(map, 2, seen, 0xf0, short_chunk, store_ok, &stores) == 0 &&
              chunk_map_state(map, 2) == CHUNK_LOCAL && chunk_map_local(map) == 3 &&
              chunk_map_ever_local(map) == 3,
          "reads that complete a remote chunk make it LOCAL");
    CHECK(chunk_map_word(map, 2) != seen, "and change its word");
    chunk_map_free(map);
}

/* Reads storing pages of chunks while the destination app overwrites
 * them, on two threads: once a chunk is overwritten no page store of it
 * runs again (the stores run under the stripe lock, so the flags need no
 * other), and every chunk ends WRITTEN. */
enum { RACE_CHUNKS = 256, RACE_ROUNDS = 64 };

struct race {
    struct chunk_map *map;
    bool overwritten[RACE_CHUNKS]; /* set and read inside stores: the stripe lock's */
    bool late_store;               /* a page store after an overwrite */
};

struct race_store {
    struct race *race;
    uint64_t chunk;
};

static int store_page(void *arg)
{
    struct race_store *s = arg;
    if (s->race->overwritten[s->chunk])
        s->race->late_store = true;
    return 0;
}

static int store_overwrite(void *arg)
{
    struct race_store *s = arg;
    s->race->overwritten[s->chunk] = true;
    return 0;
}

static void *race_reader(void *arg)
{
    struct race *race = arg;
    for (int round = 0; round < RACE_ROUNDS; round++)
        for (uint64_t c = 0; c < RACE_CHUNKS; c++) {
            struct race_store s = {race, c};
            uint32_t seen = chunk_map_word(race->map, c);
            chunk_map_commit_pages(race->map, c, seen, 1ull << (round % 64), UINT64_MAX, store_page,
                                   &s);
        }
    return NULL;
}

static void test_read_pages_race(void)
{
    static struct race race;
    race.map = chunk_map_new(RACE_CHUNKS);
    CHECK(race.map, "chunk_map_new");
    pthread_t reader;
    CHECK(pthread_create(&reader, NULL, race_reader, &race) == 0, "start the reader");
    for (uint64_t c = 0; c < RACE_CHUNKS; c++) {
        struct race_store s = {&race, c};
        CHECK(chunk_map_overwrite(race.map, c, store_overwrite, &s) == 0, "overwrite");
    }
    pthread_join(reader, NULL);
    CHECK(!race.late_store, "a read's pages were stored into a chunk the app had overwritten");
    for (uint64_t c = 0; c < RACE_CHUNKS; c++)
        CHECK(chunk_map_state(race.map, c) == CHUNK_WRITTEN, "chunk %llu ends WRITTEN",
              (unsigned long long)c);
    CHECK(chunk_map_local(race.map) == RACE_CHUNKS, "every chunk counted local once");
    chunk_map_free(race.map);
}

int main(void)
{
    test_read_pages_race();
    test_read_pages();
    test_word_follows_changes();
    test_stale_pull_keeps_word();
    test_stale_pages();
    return 0;
}
