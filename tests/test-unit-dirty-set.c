/* SPDX-License-Identifier: MIT */
/* Unit test: the dirty set, including writers racing a taker: every mark
 * must show up in exactly one take or in the final remainder. */
#include "dirty-set.h"
#include "testlib.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static void test_basics(void)
{
    struct dirty_set *set = dirty_set_new(200), *out = dirty_set_new(200);
    CHECK(dirty_set_mark_range(set, 3, 3) == 1, "one fresh chunk");
    CHECK(dirty_set_mark_range(set, 60, 130) == 71, "71 fresh chunks");
    CHECK(dirty_set_mark_range(set, 2, 4) == 2, "chunk 3 was marked already");
    dirty_set_mark_range(set, 199, 400); /* clamped to the last chunk */
    CHECK(dirty_set_count(set) == 3 + 71 + 1, "count %llu",
          (unsigned long long)dirty_set_count(set));
    uint64_t list[200];
    size_t n = dirty_set_list(set, list, NULL, 200);
    CHECK(n == 75 && list[0] == 2 && list[3] == 60 && list[73] == 130 && list[74] == 199, "list");
    dirty_set_take(set, out);
    CHECK(dirty_set_count(set) == 0 && dirty_set_count(out) == 75, "take moves everything");
    dirty_set_mark_range(set, 4, 5);
    CHECK(dirty_set_count_union(set, out) == 76, "union counts chunk 4 once");
    dirty_set_merge(out, set);
    CHECK(dirty_set_count(out) == 76 && dirty_set_count(set) == 2, "merge keeps the source");
    dirty_set_clear(out);
    CHECK(dirty_set_count(out) == 0, "clear");
    dirty_set_free(set);
    dirty_set_free(out);
}

/* Page masks: ORed per chunk, moved by a take, whole chunks in between. */
static void test_pages(void)
{
    struct dirty_set *set = dirty_set_new(10), *out = dirty_set_new(10);
    CHECK(dirty_set_mark_pages(set, 1, 1, 0x3, 0x3) == 1, "one fresh chunk");
    dirty_set_mark_pages(set, 1, 1, 0x100, 0x100);
    dirty_set_mark_pages(set, 3, 5, 1ull << 63, 0x1); /* across 3, 4 and 5 */
    dirty_set_mark_pages(set, 8, 8, 0x10, 0x10);
    dirty_set_mark_range(set, 8, 8); /* then the whole chunk */
    dirty_set_mark_pages(set, 8, 8, 0x20, 0x20);
    uint64_t list[10], pages[10];
    size_t n = dirty_set_list(set, list, pages, 10);
    CHECK(n == 5 && list[0] == 1 && list[4] == 8, "list");
    CHECK(pages[0] == 0x103 && pages[1] == 1ull << 63 && pages[2] == DIRTY_ALL_PAGES &&
              pages[3] == 1 && pages[4] == DIRTY_ALL_PAGES,
          "pages %#llx %#llx %#llx %#llx %#llx", (unsigned long long)pages[0],
          (unsigned long long)pages[1], (unsigned long long)pages[2], (unsigned long long)pages[3],
          (unsigned long long)pages[4]);
    dirty_set_take(set, out);
    dirty_set_mark_pages(set, 1, 1, 0x4, 0x4);
    dirty_set_take(set, out);
    n = dirty_set_list(out, list, pages, 10);
    CHECK(n == 5 && pages[0] == 0x107, "a second take adds page 2: %#llx",
          (unsigned long long)pages[0]);
    dirty_set_clear(out);
    dirty_set_mark_pages(out, 1, 1, 0x8, 0x8);
    n = dirty_set_list(out, list, pages, 10);
    CHECK(n == 1 && pages[0] == 0x8, "clear forgets the old pages: %#llx",
          (unsigned long long)pages[0]);
    dirty_set_free(set);
    dirty_set_free(out);
}

enum { CHUNKS = 4096, WRITERS = 4, ROUNDS = 20000 };

struct race {
    struct dirty_set *set;
    atomic_int writers_left;
    _Atomic uint64_t marks[CHUNKS]; /* how often each chunk was marked */
    unsigned seed;
};

static void *writer(void *arg)
{
    struct race *race = arg;
    unsigned seed = (unsigned)atomic_fetch_add(&race->writers_left, 0) * 7919u + 1;
    for (int i = 0; i < ROUNDS; i++) {
        seed = seed * 1103515245u + 12345u;
        uint64_t chunk = (seed >> 8) % CHUNKS;
        /* Count first: a mark the taker sees must already be counted. */
        atomic_fetch_add(&race->marks[chunk], 1);
        dirty_set_mark_range(race->set, chunk, chunk);
    }
    atomic_fetch_sub(&race->writers_left, 1);
    return NULL;
}

static void test_race(void)
{
    static struct race race;
    race.set = dirty_set_new(CHUNKS);
    atomic_store(&race.writers_left, WRITERS);
    bool *seen = calloc(CHUNKS, sizeof *seen);
    struct dirty_set *taken = dirty_set_new(CHUNKS);
    uint64_t *list = malloc(CHUNKS * sizeof *list);
    pthread_t threads[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&threads[i], NULL, writer, &race);
    int takes = 0;
    do {
        dirty_set_clear(taken);
        dirty_set_take(race.set, taken);
        size_t n = dirty_set_list(taken, list, NULL, CHUNKS);
        for (size_t i = 0; i < n; i++)
            seen[list[i]] = true;
        takes++;
    } while (atomic_load(&race.writers_left) > 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(threads[i], NULL);
    dirty_set_clear(taken);
    dirty_set_take(race.set, taken); /* whatever raced the last take */
    size_t n = dirty_set_list(taken, list, NULL, CHUNKS);
    for (size_t i = 0; i < n; i++)
        seen[list[i]] = true;
    for (uint64_t c = 0; c < CHUNKS; c++)
        CHECK(!atomic_load(&race.marks[c]) || seen[c], "chunk %llu marked but never taken",
              (unsigned long long)c);
    printf("test-unit-dirty-set: %d takes raced %d writers, nothing lost\n", takes, WRITERS);
    free(seen);
    free(list);
    dirty_set_free(taken);
    dirty_set_free(race.set);
}

int main(void)
{
    test_basics();
    test_pages();
    test_race();
    return 0;
}
