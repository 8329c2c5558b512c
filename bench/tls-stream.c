/* SPDX-License-Identifier: MIT */
/* The copy floor's streams: plaintext, or TLS 1.3 with OpenSSL on the
 * socket itself (records of up to 16 KiB encrypted straight from and into
 * the caller's buffer), to measure what encryption costs with no frame
 * protector in between. */
#include "tls-stream.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

/* A self-signed certificate for KEY, valid for a day. */
static X509 *self_signed(EVP_PKEY *key)
{
    X509 *cert = X509_new();
    X509_NAME *name = cert ? X509_get_subject_name(cert) : NULL;
    if (!name || !X509_set_version(cert, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert), 86400) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                                    -1, -1, 0) ||
        !X509_set_issuer_name(cert, name) || !X509_set_pubkey(cert, key) ||
        !X509_sign(cert, key, EVP_sha256())) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* A context of METHOD that speaks TLS 1.3 only, as gRPC 1.51 negotiates
 * with OpenSSL 3 (its default cipher order: AES-256-GCM first). */
static SSL_CTX *tls13_context(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx && !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int tls_contexts_init(struct tls_contexts *tls, char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = key ? self_signed(key) : NULL;
    tls->server = cert ? tls13_context(TLS_server_method()) : NULL;
    tls->client = tls->server ? tls13_context(TLS_client_method()) : NULL;
    /* No session tickets: the sending end never reads, and a socket closed
     * with unread bytes resets the connection, losing the stream's tail. */
    bool ok = tls->client && SSL_CTX_set_num_tickets(tls->server, 0) == 1 &&
              SSL_CTX_use_certificate(tls->server, cert) == 1 &&
              SSL_CTX_use_PrivateKey(tls->server, key) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!ok) {
        snprintf(err, errlen, "cannot make a TLS certificate and contexts with OpenSSL");
        tls_contexts_free(tls);
        return -1;
    }
    return 0;
}

void tls_contexts_free(struct tls_contexts *tls)
{
    SSL_CTX_free(tls->server);
    SSL_CTX_free(tls->client);
    tls->server = tls->client = NULL;
}

bool stream_open(struct stream *s, int fd, const struct tls_contexts *tls, bool accepting)
{
    *s = (struct stream){fd, NULL};
    if (!tls)
        return true;
    s->ssl = SSL_new(accepting ? tls->server : tls->client);
    if (!s->ssl || SSL_set_fd(s->ssl, fd) != 1)
        return false;
    return (accepting ? SSL_accept(s->ssl) : SSL_connect(s->ssl)) == 1;
}

bool stream_send(struct stream *s, const void *buf, size_t len)
{
    if (s->ssl) {
        size_t written;
        return SSL_write_ex(s->ssl, buf, len, &written) == 1 && written == len;
    }
    for (size_t done = 0; done < len;) {
        ssize_t n = send(s->fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

/* One read of at most LEN bytes: >0, 0 at the end of the stream, -1. */
static ssize_t receive_some(struct stream *s, void *buf, size_t len)
{
    if (!s->ssl)
        return recv(s->fd, buf, len, 0);
    size_t got;
    if (SSL_read_ex(s->ssl, buf, len, &got) == 1)
        return (ssize_t)got;
    return SSL_get_error(s->ssl, 0) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

ssize_t stream_recv(struct stream *s, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = receive_some(s, (char *)buf + done, len - done);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

const char *stream_cipher(const struct stream *s)
{
    return s->ssl ? SSL_get_cipher_name(s->ssl) : "plaintext";
}

void stream_close(struct stream *s)
{
    if (s->ssl) {
        SSL_shutdown(s->ssl);
        SSL_free(s->ssl);
    }
    if (s->fd >= 0)
        close(s->fd);
    *s = (struct stream){-1, NULL};
}
