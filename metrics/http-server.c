/* SPDX-License-Identifier: MIT */
/* The /metrics endpoint: libmicrohttpd on one internal thread (so scrapes
 * never overlap and the collect callback needs no lock of its own), on a
 * listening socket made here so a bind failure has a precise reason and
 * port 0 can be reported. GET and HEAD of /metrics only. */
#include "metrics.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_CONNECTIONS = 16, CONNECTION_TIMEOUT_S = 10 };

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Set up before the daemon starts; read-only afterwards. */
struct metrics_server {
    struct MHD_Daemon *daemon;
    metrics_collect_fn collect;
    void *opaque;
};

static enum MHD_Result reply_text(struct MHD_Connection *connection, unsigned status,
                                  const char *text)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result r = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return r;
}

static enum MHD_Result reply_metrics(struct metrics_server *s, struct MHD_Connection *connection)
{
    struct metrics_text text;
    metrics_text_init(&text);
    s->collect(s->opaque, &text);
    if (text.failed || !text.data) {
        metrics_text_free(&text);
        return reply_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    struct MHD_Response *response =
        MHD_create_response_from_buffer(text.length, text.data, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        metrics_text_free(&text);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    enum MHD_Result r = MHD_queue_response(connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return r;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *connection, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **request_state)
{
    struct metrics_server *s = cls;
    (void)version, (void)upload_data, (void)upload_data_size, (void)request_state;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/metrics") != 0)
        return reply_text(connection, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
    return reply_metrics(s, connection);
}

/* A listening TCP socket on ADDR; its bound port in *PORT. -1 with ERR. */
static int listen_on(const struct sockaddr *addr, socklen_t addr_len, int *port, char *err,
                     size_t errlen)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, addr, addr_len) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0) {
        int saved = errno;
        snprintf(err, errlen, "cannot listen for metrics: %s", strerror(saved));
        if (fd >= 0)
            close(fd);
        errno = saved;
        return -1;
    }
    *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

struct metrics_server *metrics_server_start(const struct sockaddr *addr, socklen_t addr_len,
                                            metrics_collect_fn collect, void *opaque, int *port,
                                            char *err, size_t errlen)
{
    struct metrics_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "cannot start the metrics server: %s", strerror(errno));
        return NULL;
    }
    s->collect = collect;
    s->opaque = opaque;
    int fd = listen_on(addr, addr_len, port, err, errlen);
    if (fd < 0) {
        free(s);
        return NULL;
    }
    s->daemon = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, handle_request, s, MHD_OPTION_LISTEN_SOCKET,
        (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (!s->daemon) {
        int saved = errno ? errno : EIO;
        snprintf(err, errlen, "cannot start the metrics server (libmicrohttpd): %s",
                 strerror(saved));
        close(fd);
        free(s);
        errno = saved;
        return NULL;
    }
    return s;
}

void metrics_server_stop(struct metrics_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon); /* joins its thread and closes the socket */
    free(s);
}
