/* SPDX-License-Identifier: MIT */
/* Scope-bound cleanup: free on scope exit and locks that unlock themselves.
 * Uses GCC/Clang's cleanup attribute. */
#ifndef GODWIT_CLEANUP_H
#define GODWIT_CLEANUP_H

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static inline void cleanup_free(void *ptr)
{
    free(*(void **)ptr);
}
#define CLEANUP_FREE __attribute__((cleanup(cleanup_free)))

static inline void cleanup_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define CLEANUP_CLOSE __attribute__((cleanup(cleanup_close)))

static inline void cleanup_unlock(pthread_mutex_t **lock)
{
    int r = pthread_mutex_unlock(*lock);
    assert(r == 0);
    (void)r;
}

#define GODWIT_CONCAT_(a, b) a##b
#define GODWIT_CONCAT(a, b) GODWIT_CONCAT_(a, b)

/* Locks MUTEX until the end of the enclosing scope. */
#define LOCK_FOR_SCOPE(mutex)                                                                      \
    __attribute__((cleanup(cleanup_unlock), unused))                                               \
    pthread_mutex_t *GODWIT_CONCAT(scope_lock_, __COUNTER__) = (mutex);                            \
    do {                                                                                           \
        int lock_r_ = pthread_mutex_lock(mutex);                                                   \
        assert(lock_r_ == 0);                                                                      \
        (void)lock_r_;                                                                             \
    } while (0)

#endif
