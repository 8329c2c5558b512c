/* SPDX-License-Identifier: MIT */
/* Helpers for tests that start real godwit processes. */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void test_skip(const char *why)
{
    fprintf(stderr, "SKIP: %s\n", why);
    exit(77);
}

char *test_make_dir(const char *name)
{
    const char *tmp = getenv("TMPDIR");
    char *dir;
    if (asprintf(&dir, "%s/godwit-%s-XXXXXX", tmp ? tmp : "/tmp", name) < 0)
        abort();
    CHECK(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
    return dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void test_cleanup_dir(const char *dir)
{
    if (getenv("GODWIT_KEEP_TEST_DIRS"))
        return;
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *test_program(const char *relative)
{
    const char *bin = getenv("GODWIT_BIN");
    char *path;
    if (asprintf(&path, "%s/%s", bin ? bin : ".", relative) < 0)
        abort();
    CHECK(access(path, X_OK) == 0, "%s is not built", path);
    return path;
}

pid_t test_spawn(char *const argv[], const char *log_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid > 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    /* The daemon inherits nothing but stdio: a process that outlives the
     * test (a FUSE mount) must not hold a lock ctest's caller holds. */
    close_range(3, ~0u, 0);
    if (log_path) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
    }
    close_range(3, ~0u, 0); /* no inherited fd (a lock, a pipe) outlives the test in a daemon */
    execvp(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int test_stop(pid_t pid, int timeout_ms)
{
    int status;
    kill(pid, SIGTERM);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return decode_status(status);
        usleep(10000);
    }
    fprintf(stderr, "process %d ignored SIGTERM for %d ms, killing it\n", (int)pid, timeout_ms);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return decode_status(status);
}

void test_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

bool test_wait_for_path(const char *path, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (access(path, F_OK) == 0)
            return true;
        usleep(10000);
    }
    return false;
}

static bool log_has_line(const char *log_path, const char *text)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return false;
    char *line = NULL;
    size_t size = 0;
    bool found = false;
    while (!found && getline(&line, &size, f) > 0)
        found = strstr(line, text) != NULL;
    free(line);
    fclose(f);
    return found;
}

bool test_wait_for_log(const char *log_path, const char *text, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (log_has_line(log_path, text))
            return true;
        usleep(10000);
    }
    return false;
}

/* The ready event among the lines of LOG_PATH past byte *OFFSET, or NULL;
 * moves *OFFSET past the complete lines read. */
static json_t *find_ready(const char *log_path, long *offset)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return NULL;
    json_t *ready = NULL;
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    fseek(f, *offset, SEEK_SET);
    while (!ready && (len = getline(&line, &size, f)) > 0) {
        if (line[len - 1] != '\n')
            break; /* not complete yet: read it again next time */
        *offset += (long)len;
        json_t *event = strstr(line, "\"event\":\"ready\"") ? json_loads(line, 0, NULL) : NULL;
        const char *name = json_string_value(json_object_get(event, "event"));
        if (name && strcmp(name, "ready") == 0)
            ready = event;
        else
            json_decref(event);
    }
    free(line);
    fclose(f);
    return ready;
}

json_t *test_spawn_ready(char *const argv[], const char *log_path, pid_t *pid, int timeout_ms)
{
    CHECK(log_path, "test_spawn_ready needs a log file to read %s's ready event", argv[0]);
    struct stat st;
    long offset = stat(log_path, &st) == 0 ? (long)st.st_size : 0;
    *pid = test_spawn(argv, log_path);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        json_t *ready = find_ready(log_path, &offset);
        if (ready)
            return ready;
        int status = 0;
        CHECK(waitpid(*pid, &status, WNOHANG) == 0,
              "%s exited (status %d) before it was ready; see %s", argv[0], decode_status(status),
              log_path);
        usleep(10000);
    }
    CHECK(false, "%s printed no ready event in %d ms; see %s", argv[0], timeout_ms, log_path);
    return NULL;
}

int test_event_int(const json_t *event, const char *name)
{
    const json_t *value = json_object_get(event, name);
    CHECK(json_is_integer(value), "the ready event has no integer \"%s\"", name);
    return (int)json_integer_value(value);
}

void test_fill_random(void *buf, size_t len, uint64_t seed)
{
    /* splitmix64: fast, deterministic, good enough for test data. */
    unsigned char *p = buf;
    uint64_t x = seed;
    while (len > 0) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        size_t n = len < 8 ? len : 8;
        memcpy(p, &z, n);
        p += n;
        len -= n;
    }
}

void test_write_random_file(const char *path, uint64_t len, uint64_t seed)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "create %s: %s", path, strerror(errno));
    static const size_t block = 1 << 20;
    unsigned char *buf = malloc(block);
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < block ? (size_t)(len - done) : block;
        test_fill_random(buf, n, seed + done);
        CHECK(fwrite(buf, 1, n, f) == n, "write %s", path);
        done += n;
    }
    free(buf);
    /* On disk, so a later flush by a daemon does not pay for our writes. */
    CHECK(fflush(f) == 0 && fsync(fileno(f)) == 0, "sync %s", path);
    CHECK(fclose(f) == 0, "close %s", path);
}

uint64_t test_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
