/* SPDX-License-Identifier: MIT */
/* Integration test: the seeder's --mount file. An app maps DIR/image with
 * MAP_SHARED, writes through memory and msyncs; the bytes must show in
 * ReadAt and the chunks in the dirty set. Skipped without FUSE. */
#include "seeder-harness.h"
#include "testlib.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { CHUNK = 64 << 10, SIZE = 4 << 20 };

static void call_ok(struct seeder_proc *s, const char *method, const ProtobufCMessage *request,
                    const ProtobufCMessageDescriptor *type, ProtobufCMessage **response)
{
    struct rpc_result result;
    CHECK(seeder_call(s, method, request, type, response, &result) == GRPC_STATUS_OK, "%s: %s",
          method, result.message);
}

int main(void)
{
    if (access("/dev/fuse", R_OK | W_OK) != 0)
        test_skip("/dev/fuse is not usable");
    if (system("command -v nbdfuse >/dev/null 2>&1") != 0)
        test_skip("nbdfuse is not installed");

    struct seeder_proc s;
    char *dir = test_make_dir("seeder-mount-dir");
    char mount_dir[600], file[700];
    snprintf(mount_dir, sizeof mount_dir, "%s/mnt", dir);
    snprintf(file, sizeof file, "%s/image", mount_dir);
    const char *extra[] = {"--mount", mount_dir, NULL};
    seeder_start(&s, "seeder-mount", SIZE, CHUNK, extra);
    CHECK(test_wait_for_path(file, 10000), "no %s (see %s)", file, s.log);

    ProtobufCMessage *response;
    Godwit__V1__TrackRequest track = GODWIT__V1__TRACK_REQUEST__INIT;
    call_ok(&s, "Track", &track.base, &godwit__v1__track_response__descriptor, &response);
    protobuf_c_message_free_unpacked(response, NULL);

    int fd = open(file, O_RDWR);
    CHECK(fd >= 0, "open %s", file);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == SIZE, "mounted file size %lld",
          (long long)st.st_size);
    unsigned char *map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(map != MAP_FAILED, "mmap MAP_SHARED");
    memcpy(map + 3 * CHUNK + 123, "through memory", 14);
    memcpy(map + 9 * CHUNK - 2, "span", 4); /* chunks 8 and 9 */
    CHECK(msync(map, SIZE, MS_SYNC) == 0, "msync");

    Godwit__V1__SyncRequest sync = GODWIT__V1__SYNC_REQUEST__INIT;
    call_ok(&s, "Sync", &sync.base, &godwit__v1__sync_response__descriptor, &response);
    Godwit__V1__SyncResponse *dirty = (void *)response;
    CHECK(dirty->n_dirty_offsets >= 3, "only %zu dirty chunks", dirty->n_dirty_offsets);
    bool seen3 = false, seen8 = false, seen9 = false;
    for (size_t i = 0; i < dirty->n_dirty_offsets; i++) {
        seen3 |= dirty->dirty_offsets[i] == 3 * CHUNK;
        seen8 |= dirty->dirty_offsets[i] == 8 * CHUNK;
        seen9 |= dirty->dirty_offsets[i] == 9 * CHUNK;
    }
    CHECK(seen3 && seen8 && seen9, "mmap writes missing from the dirty set");
    protobuf_c_message_free_unpacked(response, NULL);

    Godwit__V1__ReadAtRequest read = GODWIT__V1__READ_AT_REQUEST__INIT;
    read.offset = 3 * CHUNK + 123;
    read.length = 14;
    call_ok(&s, "ReadAt", &read.base, &godwit__v1__read_at_response__descriptor, &response);
    Godwit__V1__ReadAtResponse *data = (void *)response;
    CHECK(data->data.len == 14 && memcmp(data->data.data, "through memory", 14) == 0,
          "ReadAt does not see the mmap write");
    protobuf_c_message_free_unpacked(response, NULL);

    munmap(map, SIZE);
    close(fd);
    CHECK(seeder_stop(&s) == 0, "seeder did not exit cleanly");
    FILE *mounts = fopen("/proc/mounts", "r");
    char line[1024];
    while (fgets(line, sizeof line, mounts))
        CHECK(!strstr(line, mount_dir), "%s still mounted after exit", mount_dir);
    fclose(mounts);
    seeder_cleanup(&s);
    test_cleanup_dir(dir);
    free(dir);
    printf("test-seeder-mount: ok\n");
    return 0;
}
