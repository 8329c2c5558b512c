/* SPDX-License-Identifier: MIT */
/* The floor of --verify: how long reading and hashing whole images takes
 * on this machine now, with nothing else of godwit running. Each FILE is
 * hashed chunk by chunk exactly as Seeder.Digest and the leecher's
 * --verify do (read_checksum_image: pread into a 1 MiB buffer, XXH3-64 per
 * chunk), by --threads threads per file over equal pieces; all files at
 * once (one file stands for one side of a migration). Prints one JSON line:
 * the wall time and the GB/s of all files together.
 *   godwit-hash-floor [--threads N] [--chunk-size BYTES] FILE... */
#include "image-file.h"
#include "read-checksum.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum { MAX_FILES = 8, MAX_THREADS = 16, BUFFER = 1 << 20 };

/* One thread's piece: chunks [first, end) of one image. */
struct piece {
    const struct image_file *image;
    uint64_t size, chunk, first, end;
    uint64_t digest; /* XOR of its chunks' digests, so the work is not elided */
    int err;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *hash_piece(void *arg)
{
    struct piece *p = arg;
    uint8_t *buf = malloc(BUFFER);
    if (!buf) {
        p->err = ENOMEM;
        return NULL;
    }
    for (uint64_t i = p->first; i < p->end && !p->err; i++) {
        uint64_t offset = i * p->chunk, d;
        uint64_t length = p->size - offset < p->chunk ? p->size - offset : p->chunk;
        if (read_checksum_image(p->image, offset, length, buf, BUFFER, &d) < 0)
            p->err = errno;
        p->digest ^= d;
    }
    free(buf);
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: godwit-hash-floor [--threads N] [--chunk-size BYTES] FILE...\n");
    return 2;
}

int main(int argc, char **argv)
{
    int threads = 1, n = 0;
    uint64_t chunk = 256 << 10, bytes = 0;
    const char *paths[MAX_FILES];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--chunk-size") == 0 && i + 1 < argc)
            chunk = strtoull(argv[++i], NULL, 0);
        else if (argv[i][0] == '-' || n == MAX_FILES)
            return usage();
        else
            paths[n++] = argv[i];
    }
    if (!n || threads < 1 || threads > MAX_THREADS || chunk < 4096)
        return usage();
    static struct image_file images[MAX_FILES];
    static struct piece pieces[MAX_FILES * MAX_THREADS];
    static pthread_t ids[MAX_FILES * MAX_THREADS];
    for (int f = 0; f < n; f++) {
        char err[256];
        struct stat st;
        if (stat(paths[f], &st) < 0) {
            fprintf(stderr, "godwit-hash-floor: cannot stat %s: %s\n", paths[f], strerror(errno));
            return 1;
        }
        if (image_open(&images[f], paths[f], 0, err, sizeof err) < 0) {
            fprintf(stderr, "godwit-hash-floor: %s\n", err);
            return 1;
        }
        uint64_t chunks = ((uint64_t)st.st_size + chunk - 1) / chunk;
        for (int t = 0; t < threads; t++)
            pieces[f * threads + t] = (struct piece){&images[f],
                                                     (uint64_t)st.st_size,
                                                     chunk,
                                                     chunks * t / threads,
                                                     chunks * (t + 1) / threads,
                                                     0,
                                                     0};
        bytes += (uint64_t)st.st_size;
    }
    double start = now_s();
    for (int i = 0; i < n * threads; i++)
        if ((errno = pthread_create(&ids[i], NULL, hash_piece, &pieces[i]))) {
            fprintf(stderr, "godwit-hash-floor: pthread_create: %s\n", strerror(errno));
            return 1;
        }
    uint64_t all = 0;
    for (int i = 0; i < n * threads; i++) {
        pthread_join(ids[i], NULL);
        if (pieces[i].err) {
            fprintf(stderr, "godwit-hash-floor: read: %s\n", strerror(pieces[i].err));
            return 1;
        }
        all ^= pieces[i].digest;
    }
    double took = now_s() - start;
    printf("{\"files\":%d,\"threads_per_file\":%d,\"bytes\":%llu,\"ms\":%.1f,\"gb_per_s\":%.2f,"
           "\"xor\":\"%016llx\"}\n",
           n, threads, (unsigned long long)bytes, took * 1000, (double)bytes / took / 1e9,
           (unsigned long long)all);
    for (int f = 0; f < n; f++)
        image_close(&images[f]);
    return 0;
}
