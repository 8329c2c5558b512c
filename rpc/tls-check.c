/* SPDX-License-Identifier: MIT */
/* Checks the TLS files a daemon was given before it starts: each is read
 * and parsed with OpenSSL (the library gRPC uses), so a missing, garbage,
 * encrypted or mismatched file is one plain sentence at start-up instead
 * of a plaintext fallback or a handshake that fails later. */
#include "rpc-server.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

/* A key that asks for a passphrase is refused: nobody is there to type it. */
static int no_passphrase(char *buf, int size, int rwflag, void *opaque)
{
    (void)buf, (void)size, (void)rwflag, (void)opaque;
    return -1;
}

static FILE *open_file(const char *flag, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        snprintf(err, errlen, "cannot read --%s %s: %s", flag, path, strerror(errno));
    return f;
}

/* The first certificate in PATH; NULL with ERR. */
static X509 *read_certificate(const char *flag, const char *path, char *err, size_t errlen)
{
    FILE *f = open_file(flag, path, err, errlen);
    if (!f)
        return NULL;
    X509 *cert = PEM_read_X509(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!cert)
        snprintf(err, errlen, "--%s %s holds no PEM certificate", flag, path);
    else if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
        snprintf(err, errlen, "--%s %s has expired", flag, path);
        X509_free(cert);
        return NULL;
    }
    return cert;
}

static EVP_PKEY *read_key(const char *path, char *err, size_t errlen)
{
    FILE *f = open_file("tls-key", path, err, errlen);
    if (!f)
        return NULL;
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!key)
        snprintf(err, errlen, "--tls-key %s holds no unencrypted PEM private key", path);
    return key;
}

int rpc_tls_check(const struct rpc_tls *tls, char *err, size_t errlen)
{
    X509 *cert = NULL, *ca = NULL;
    EVP_PKEY *key = NULL;
    int r = -1;
    if (tls->cert && !(cert = read_certificate("tls-cert", tls->cert, err, errlen)))
        goto out;
    if (tls->key && !(key = read_key(tls->key, err, errlen)))
        goto out;
    if (cert && key && X509_check_private_key(cert, key) != 1) {
        snprintf(err, errlen, "--tls-key %s is not the key of --tls-cert %s", tls->key, tls->cert);
        goto out;
    }
    if (tls->client_ca && !(ca = read_certificate("tls-ca", tls->client_ca, err, errlen)))
        goto out;
    r = 0;
out:
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(key);
    return r;
}
