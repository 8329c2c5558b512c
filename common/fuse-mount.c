/* SPDX-License-Identifier: MIT */
/* The --mount file: an nbdfuse child process serving DIR/image from our own
 * NBD unix socket, started and stopped with the daemon. */
#include "fuse-mount.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct fuse_mount {
    char *dir;
    char *file;
    char *pidfile;
    pid_t pid;
    struct logger *log;
};

/* Runs ARGV with stdout/stderr to /dev/null unless QUIET is false. */
static pid_t spawn(char *const argv[], bool quiet)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigset_t none; /* the daemons block their signals for sigwait: the child must not */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    /* Nothing of ours stays open in nbdfuse: a mount that outlives us must
     * not hold our sockets, or a lock our own parent holds. */
    close_range(3, ~0u, 0);
    if (quiet) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
    }
    close_range(3, ~0u, 0); /* nothing of ours (sockets, locks) outlives us in nbdfuse */
    execvp(argv[0], argv);
    _exit(127);
}

static int run(char *const argv[])
{
    int status;
    pid_t pid = spawn(argv, true);
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Waits for nbdfuse's pid file, which it writes once the file is served. */
static int wait_ready(struct fuse_mount *mount, char *err, size_t errlen)
{
    for (int waited = 0; waited < 10000; waited += 20) {
        int status;
        if (waitpid(mount->pid, &status, WNOHANG) == mount->pid) {
            snprintf(err, errlen, "nbdfuse failed to mount %s (exit %d); is FUSE usable here?",
                     mount->dir, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            mount->pid = -1;
            return -1;
        }
        if (access(mount->pidfile, F_OK) == 0)
            return 0;
        sleep_ms(20);
    }
    snprintf(err, errlen, "nbdfuse did not mount %s within 10 s", mount->dir);
    return -1;
}

static int check_prerequisites(const char *dir, char *err, size_t errlen)
{
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        snprintf(err, errlen, "--mount needs FUSE but /dev/fuse is not usable: %s",
                 strerror(errno));
        return -1;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create mount directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

struct fuse_mount *fuse_mount_start(const char *dir, const char *socket_path, struct logger *log,
                                    char *err, size_t errlen)
{
    if (check_prerequisites(dir, err, errlen) < 0)
        return NULL;
    struct fuse_mount *mount = calloc(1, sizeof *mount);
    if (!mount) {
        snprintf(err, errlen, "out of memory mounting %s", dir);
        return NULL;
    }
    mount->log = log;
    mount->pid = -1;
    if (asprintf(&mount->file, "%s/image", dir) < 0)
        mount->file = NULL;
    if (asprintf(&mount->pidfile, "%s.nbdfuse.pid", socket_path) < 0)
        mount->pidfile = NULL;
    if (!mount->file || !mount->pidfile || !(mount->dir = strdup(dir))) {
        snprintf(err, errlen, "out of memory mounting %s", dir);
        fuse_mount_stop(mount);
        return NULL;
    }
    unlink(mount->pidfile);
    char *argv[] = {"nbdfuse",           "-P", mount->pidfile, mount->file, "--unix",
                    (char *)socket_path, NULL};
    mount->pid = spawn(argv, false);
    if (mount->pid < 0 || wait_ready(mount, err, errlen) < 0) {
        fuse_mount_stop(mount);
        return NULL;
    }
    log_info(log, "image mounted at %s", mount->file);
    return mount;
}

const char *fuse_mount_file(const struct fuse_mount *mount)
{
    return mount->file;
}

/* Waits up to MS for nbdfuse to exit; true if it did. */
static bool reap(pid_t pid, int ms)
{
    for (int waited = 0; waited < ms; waited += 20) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return true;
        sleep_ms(20);
    }
    return false;
}

void fuse_mount_stop(struct fuse_mount *mount)
{
    if (!mount)
        return;
    if (mount->pid > 0) {
        char *unmount[] = {"fusermount3", "-u", mount->dir, NULL};
        char *lazy[] = {"fusermount3", "-u", "-z", mount->dir, NULL};
        if (run(unmount) != 0) {
            log_warn(mount->log, "%s is busy; unmounting lazily", mount->dir);
            run(lazy);
        }
        if (!reap(mount->pid, 5000)) {
            kill(mount->pid, SIGKILL);
            waitpid(mount->pid, NULL, 0);
        }
    }
    if (mount->pidfile)
        unlink(mount->pidfile);
    free(mount->pidfile);
    free(mount->file);
    free(mount->dir);
    free(mount);
}
