/* SPDX-License-Identifier: MIT */
/* zstd for ReadAt data (compression.h): a mutex-guarded stack of
 * compression contexts, and a one-shot decoder straight into the caller's
 * buffer (the frame flattened first if the reply split it). */
#include "compression.h"

#include "cleanup.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

enum { MAX_WINDOW_LOG = 25 }; /* 32 MiB: above the largest ReadAt (16 MiB) */

/* A context not in use, on the pool's stack. */
struct pooled {
    ZSTD_CCtx *cctx;
    struct pooled *next;
};

struct compressor {
    int level;
    pthread_mutex_t lock; /* owns idle (a leaf lock) */
    struct pooled *idle;  /* contexts free to take; each call pops one or makes one */
};

struct compressor *compressor_new(int level)
{
    struct compressor *c = calloc(1, sizeof *c);
    if (!c)
        return errno = ENOMEM, NULL;
    c->level = level;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void compressor_free(struct compressor *c)
{
    if (!c)
        return;
    while (c->idle) {
        struct pooled *p = c->idle;
        c->idle = p->next;
        ZSTD_freeCCtx(p->cctx);
        free(p);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

size_t compressor_bound(size_t len)
{
    return ZSTD_compressBound(len);
}

/* An idle context, or a new one; NULL if out of memory. */
static struct pooled *take(struct compressor *c)
{
    {
        LOCK_FOR_SCOPE(&c->lock);
        struct pooled *p = c->idle;
        if (p) {
            c->idle = p->next;
            return p;
        }
    }
    struct pooled *p = malloc(sizeof *p);
    /* The frame's own checksum (XXH64 of the content): a byte changed on
     * the way fails the decode instead of decoding to other bytes. */
    if (p && (p->cctx = ZSTD_createCCtx()) &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(p->cctx, ZSTD_c_compressionLevel, c->level)) &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(p->cctx, ZSTD_c_checksumFlag, 1)))
        return p;
    if (p)
        ZSTD_freeCCtx(p->cctx);
    free(p);
    return NULL;
}

static void give_back(struct compressor *c, struct pooled *p)
{
    LOCK_FOR_SCOPE(&c->lock);
    p->next = c->idle;
    c->idle = p;
}

size_t compressor_run(struct compressor *c, const void *in, size_t len, void *out, size_t cap)
{
    struct pooled *p = take(c);
    if (!p)
        return errno = ENOMEM, 0;
    size_t n = ZSTD_compress2(p->cctx, out, cap, in, len);
    give_back(c, p);
    if (ZSTD_isError(n))
        return errno = EIO, 0;
    return n <= len - len / 16 ? n : 0;
}

/* Decodes the SIZE bytes at IN, which must be exactly one frame that says
 * it holds LEN bytes, into OUT. */
static int decode_frame(const void *in, size_t size, void *out, size_t len)
{
    if (ZSTD_getFrameContentSize(in, size) != len || ZSTD_findFrameCompressedSize(in, size) != size)
        return errno = EBADMSG, -1;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx)
        return errno = ENOMEM, -1;
    size_t got = ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, MAX_WINDOW_LOG))
                     ? 0
                     : ZSTD_decompressDCtx(dctx, out, len, in, size);
    ZSTD_freeDCtx(dctx);
    return !ZSTD_isError(got) && got == len ? 0 : (errno = EBADMSG, -1);
}

int decompress_iov(const struct iovec *iov, int n, void *out, size_t len)
{
    if (n == 1)
        return decode_frame(iov[0].iov_base, iov[0].iov_len, out, len);
    size_t size = 0;
    for (int i = 0; i < n; i++)
        size += iov[i].iov_len;
    CLEANUP_FREE uint8_t *flat = malloc(size ? size : 1); /* the frame, in one piece */
    if (!flat)
        return errno = ENOMEM, -1;
    size_t at = 0;
    for (int i = 0; i < n; at += iov[i].iov_len, i++)
        memcpy(flat + at, iov[i].iov_base, iov[i].iov_len);
    return decode_frame(flat, size, out, len);
}
