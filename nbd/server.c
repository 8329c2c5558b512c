/* SPDX-License-Identifier: MIT */
/* The NBD server's life cycle: listening sockets (unix 0600 and/or TCP), the
 * accept loop, start, and a stop that lets in-flight requests finish. */
#include "internal.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void *accept_loop(void *arg)
{
    struct nbd_server *server = arg;
    struct pollfd fds[3];
    for (int i = 0; i < server->n_listeners; i++)
        fds[i] = (struct pollfd){server->listeners[i], POLLIN, 0};
    fds[server->n_listeners] = (struct pollfd){server->wake[0], POLLIN, 0};
    for (;;) {
        if (poll(fds, (nfds_t)server->n_listeners + 1, -1) < 0 && errno != EINTR)
            break;
        if (fds[server->n_listeners].revents) {
            char drain[64];
            while (read(server->wake[0], drain, sizeof drain) > 0)
                ;
            if (nbd_server_stopping(server))
                break;
            nbd_reap_connections(server); /* a connection ended */
        }
        for (int i = 0; i < server->n_listeners; i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            int fd = accept4(fds[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                nbd_server_add_fd(server, fd);
            else if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
                poll(NULL, 0, 100); /* out of descriptors: do not spin */
        }
    }
    return NULL;
}

/* Replaces PATH if it is a stale socket (nobody answers on it); fails if a
 * server answers there. */
static int clear_stale_socket(const char *path, const struct sockaddr_un *addr, char *err,
                              size_t errlen)
{
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (const struct sockaddr *)addr, sizeof *addr) == 0) {
        snprintf(err, errlen, "NBD socket %s is in use by another server", path);
        close(probe);
        return -1;
    }
    if (probe >= 0)
        close(probe);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    return 0;
}

/* Listens on the unix socket PATH, mode 0600. It is bound under a
 * temporary name beside PATH (PATH~), made 0600 and listening, and only
 * then renamed to PATH: a client that waits for PATH to appear finds it
 * private and accepting, never with the umask's mode or refusing. */
static int listen_unix(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX}, tmp = {.sun_family = AF_UNIX};
    if (strlen(path) + 1 >= sizeof addr.sun_path) {
        snprintf(err, errlen, "NBD socket path %s is too long (at most %zu bytes)", path,
                 sizeof addr.sun_path - 2);
        return -1;
    }
    strcpy(addr.sun_path, path);
    snprintf(tmp.sun_path, sizeof tmp.sun_path, "%s~", path);
    if (clear_stale_socket(path, &addr, err, errlen) < 0 ||
        clear_stale_socket(tmp.sun_path, &tmp, err, errlen) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a unix socket: %s", strerror(errno));
        return -1;
    }
    bool bound = bind(fd, (struct sockaddr *)&tmp, sizeof tmp) == 0;
    if (!bound || chmod(tmp.sun_path, 0600) < 0 || listen(fd, 64) < 0 ||
        rename(tmp.sun_path, path) < 0) {
        snprintf(err, errlen, "cannot listen on NBD socket %s: %s", path, strerror(errno));
        if (bound)
            unlink(tmp.sun_path);
        close(fd);
        return -1;
    }
    return fd;
}

static int listen_tcp(const char *address, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= sizeof host) {
        snprintf(err, errlen, "NBD TCP address %s is not HOST:PORT", address);
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    if (getaddrinfo(host[0] == '[' ? host + 1 : host, colon + 1, &hints, &ai) != 0) {
        snprintf(err, errlen, "NBD TCP address %s does not resolve", address);
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int r = fd < 0 ? -1 : bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? listen(fd, 64) : -1;
    freeaddrinfo(ai);
    if (r < 0) {
        snprintf(err, errlen, "cannot listen on NBD address %s: %s", address, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* The local port of the bound socket FD (IPv4 or IPv6). */
static int bound_port(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
        return 0;
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

static void apply_defaults(struct nbd_server_config *c)
{
    c->max_connections = c->max_connections ? c->max_connections : 64;
    c->max_inflight = c->max_inflight ? c->max_inflight : 64;
    c->threads_per_connection = c->threads_per_connection ? c->threads_per_connection : 16;
    c->max_request = c->max_request ? c->max_request : 32u << 20;
}

struct nbd_server *nbd_server_start(const struct nbd_server_config *config,
                                    const struct nbd_backend *backend, char *err, size_t errlen)
{
    if (!backend->pread || (!backend->pwrite && !backend->read_only)) {
        snprintf(err, errlen, "the NBD backend lacks a %s callback",
                 backend->pread ? "pwrite" : "pread");
        return NULL;
    }
    struct nbd_server *server = calloc(1, sizeof *server);
    if (!server) {
        snprintf(err, errlen, "out of memory starting the NBD server");
        return NULL;
    }
    server->backend = *backend;
    server->config = *config;
    apply_defaults(&server->config);
    server->unix_path = config->unix_path ? strdup(config->unix_path) : NULL;
    server->export_name = config->export_name ? strdup(config->export_name) : NULL;
    server->description = config->description ? strdup(config->description) : NULL;
    pthread_mutex_init(&server->lock, NULL);
    server->wake[0] = server->wake[1] = -1;
    if ((config->unix_path && !server->unix_path) ||
        (config->export_name && !server->export_name) ||
        (config->description && !server->description)) {
        snprintf(err, errlen, "out of memory starting the NBD server");
        nbd_server_stop(server);
        return NULL;
    }
    int fd = 0;
    if (config->unix_path && (fd = listen_unix(config->unix_path, err, errlen)) >= 0)
        server->listeners[server->n_listeners++] = fd;
    if (fd >= 0 && config->tcp_address &&
        (fd = listen_tcp(config->tcp_address, err, errlen)) >= 0) {
        server->listeners[server->n_listeners++] = fd;
        server->tcp_port = bound_port(fd);
    }
    if (fd < 0 || pipe2(server->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        if (fd >= 0)
            snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
        nbd_server_stop(server);
        return NULL;
    }
    if (server->n_listeners > 0) {
        int e = pthread_create(&server->acceptor, NULL, accept_loop, server);
        if (e) {
            snprintf(err, errlen, "cannot start the NBD accept thread: %s", strerror(e));
            nbd_server_stop(server);
            return NULL;
        }
        server->has_acceptor = true;
    }
    return server;
}

int nbd_server_tcp_port(const struct nbd_server *server)
{
    return server->tcp_port;
}

void nbd_server_stop(struct nbd_server *server)
{
    if (!server)
        return;
    pthread_mutex_lock(&server->lock);
    server->stopping = true;
    pthread_mutex_unlock(&server->lock);
    if (server->has_acceptor) {
        (void)!write(server->wake[1], "x", 1);
        pthread_join(server->acceptor, NULL);
    }
    for (int i = 0; i < server->n_listeners; i++)
        close(server->listeners[i]);
    if (server->unix_path && server->n_listeners > 0)
        unlink(server->unix_path);
    nbd_close_connections(server);
    for (int i = 0; i < 2; i++)
        if (server->wake[i] >= 0)
            close(server->wake[i]);
    pthread_mutex_destroy(&server->lock);
    free(server->unix_path);
    free(server->export_name);
    free(server->description);
    free(server);
}
