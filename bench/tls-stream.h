/* SPDX-License-Identifier: MIT */
/* A byte stream over a connected socket for the copy floor
 * (godwit-tcp-baseline --copy): plain send/recv, or TLS 1.3 made with
 * OpenSSL directly on the socket (the library, version and cipher
 * negotiation gRPC uses, without gRPC's frame protector around it). */
#ifndef GODWIT_BENCH_TLS_STREAM_H
#define GODWIT_BENCH_TLS_STREAM_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The two ends' contexts: the server's with a throwaway self-signed
 * P-256 certificate. Read-only once made; any thread may use them. */
struct tls_contexts {
    SSL_CTX *server, *client;
};

/* Makes both contexts; -1 with a sentence in ERR. */
int tls_contexts_init(struct tls_contexts *tls, char *err, size_t errlen);
void tls_contexts_free(struct tls_contexts *tls);

struct stream {
    int fd;
    SSL *ssl; /* NULL: plaintext */
};

/* Wraps the connected socket FD; with TLS (non-NULL), runs the handshake
 * as the server (ACCEPTING) or the client. False if the handshake fails. */
bool stream_open(struct stream *s, int fd, const struct tls_contexts *tls, bool accepting);
/* Sends all LEN bytes; false on error. */
bool stream_send(struct stream *s, const void *buf, size_t len);
/* Receives up to LEN bytes, fewer only at the end of the stream; -1 on error. */
ssize_t stream_recv(struct stream *s, void *buf, size_t len);
/* The negotiated cipher suite ("plaintext" without TLS). */
const char *stream_cipher(const struct stream *s);
/* Ends TLS (if any) and closes the socket. */
void stream_close(struct stream *s);

#endif
