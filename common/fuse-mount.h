/* SPDX-License-Identifier: MIT */
/* Exposes an NBD export as one mmap-able file through FUSE, by running
 * nbdfuse (libnbd-bin) against the export's unix socket. */
#ifndef GODWIT_FUSE_MOUNT_H
#define GODWIT_FUSE_MOUNT_H

#include <stddef.h>

struct logger;
struct fuse_mount;

/* Mounts DIR (created if missing) so that DIR/image is the export served on
 * SOCKET_PATH, and waits until it is ready. NULL with one sentence in ERR if
 * FUSE or nbdfuse is missing or the mount fails. */
struct fuse_mount *fuse_mount_start(const char *dir, const char *socket_path, struct logger *log,
                                    char *err, size_t errlen);

/* The path of the mmap-able file (DIR/image). */
const char *fuse_mount_file(const struct fuse_mount *mount);

/* Unmounts (lazily if the file is still busy), reaps nbdfuse, frees MOUNT. */
void fuse_mount_stop(struct fuse_mount *mount);

#endif
