/* SPDX-License-Identifier: MIT */
/* NBD connections: one thread per client (handshake, then the request
 * loop), admission against max_connections, reaping finished threads, and
 * closing them all at stop. */
#include "internal.h"

#include "cleanup.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum { HANDSHAKE_TIMEOUT_S = 30, SEND_TIMEOUT_S = 60 };

static void set_timeout(int fd, int option, int seconds)
{
    struct timeval tv = {.tv_sec = seconds};
    setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

/* A client gets HANDSHAKE_TIMEOUT_S to finish negotiating, then may idle
 * for ever; a reply that cannot be sent for SEND_TIMEOUT_S (the client
 * stopped reading) ends the connection, so no worker waits for ever. */
static void *connection_thread(void *arg)
{
    struct nbd_connection *conn = arg;
    set_timeout(conn->fd, SO_SNDTIMEO, SEND_TIMEOUT_S);
    set_timeout(conn->fd, SO_RCVTIMEO, HANDSHAKE_TIMEOUT_S);
    if (nbd_handshake(conn) == 0) {
        set_timeout(conn->fd, SO_RCVTIMEO, 0);
        nbd_serve_requests(conn);
    } else {
        nbd_log(conn->server, LOG_DEBUG, "NBD handshake did not complete; connection closed");
    }
    shutdown(conn->fd, SHUT_RDWR);
    struct nbd_server *server = conn->server;
    LOCK_FOR_SCOPE(&server->lock);
    conn->finished = true;
    if (server->wake[1] >= 0)
        (void)!write(server->wake[1], "r", 1); /* the acceptor joins and frees us */
    return NULL;
}

static void connection_free(struct nbd_connection *conn)
{
    close(conn->fd);
    pthread_mutex_destroy(&conn->read_lock);
    pthread_mutex_destroy(&conn->write_lock);
    free(conn);
}

/* Joins and frees connections whose thread has ended. */
void nbd_reap_connections(struct nbd_server *server)
{
    pthread_mutex_lock(&server->lock);
    struct nbd_connection **p = &server->connections, *done = NULL;
    while (*p) {
        struct nbd_connection *conn = *p;
        if (conn->finished) {
            *p = conn->next;
            conn->next = done;
            done = conn;
            server->n_connections--;
        } else {
            p = &conn->next;
        }
    }
    pthread_mutex_unlock(&server->lock);
    while (done) {
        struct nbd_connection *next = done->next;
        pthread_join(done->thread, NULL);
        connection_free(done);
        done = next;
    }
}

int nbd_server_add_fd(struct nbd_server *server, int fd)
{
    nbd_reap_connections(server);
    pthread_mutex_lock(&server->lock);
    if (server->stopping || server->n_connections >= server->config.max_connections) {
        bool stopping = server->stopping;
        pthread_mutex_unlock(&server->lock);
        if (!stopping)
            nbd_log(server, LOG_WARN, "NBD connection refused: already %u connections",
                    server->config.max_connections);
        close(fd);
        errno = stopping ? ESHUTDOWN : EMFILE;
        return -1;
    }
    struct nbd_connection *conn = calloc(1, sizeof *conn);
    if (!conn) {
        pthread_mutex_unlock(&server->lock);
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    conn->server = server;
    conn->fd = fd;
    pthread_mutex_init(&conn->read_lock, NULL);
    pthread_mutex_init(&conn->write_lock, NULL);
    int err = pthread_create(&conn->thread, NULL, connection_thread, conn);
    if (err) {
        pthread_mutex_unlock(&server->lock);
        nbd_log(server, LOG_WARN, "NBD connection refused: cannot start a thread: %s",
                strerror(err));
        connection_free(conn);
        errno = err;
        return -1;
    }
    conn->next = server->connections;
    server->connections = conn;
    server->n_connections++;
    pthread_mutex_unlock(&server->lock);
    return 0;
}

bool nbd_server_stopping(struct nbd_server *server)
{
    LOCK_FOR_SCOPE(&server->lock);
    return server->stopping;
}

unsigned nbd_server_connections(struct nbd_server *server)
{
    nbd_reap_connections(server);
    LOCK_FOR_SCOPE(&server->lock);
    return server->n_connections;
}

/* Wakes every connection's reader and joins its thread. */
void nbd_close_connections(struct nbd_server *server)
{
    pthread_mutex_lock(&server->lock);
    for (struct nbd_connection *conn = server->connections; conn; conn = conn->next)
        shutdown(conn->fd, SHUT_RD); /* replies in flight may still go out */
    struct nbd_connection *list = server->connections;
    server->connections = NULL;
    server->n_connections = 0;
    pthread_mutex_unlock(&server->lock);
    while (list) {
        struct nbd_connection *next = list->next;
        pthread_join(list->thread, NULL);
        connection_free(list);
        list = next;
    }
}
