/* SPDX-License-Identifier: MIT */
/* The fixed-newstyle handshake: greeting, client flags, then options
 * (structured replies, metadata contexts, list, info) until NBD_OPT_GO or
 * NBD_OPT_EXPORT_NAME moves on to transmission. Anything unknown is refused
 * with NBD_REP_ERR_UNSUP; a broken handshake closes this connection only. */
#include "internal.h"

#include "cleanup.h"
#include "log.h"
#include "protocol.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_OPTION_LENGTH = 64 << 10, MAX_OPTIONS = 256 };

int nbd_option_reply(int fd, uint32_t option, uint32_t type, const void *data, uint32_t len)
{
    struct {
        uint64_t magic;
        uint32_t option, type, len;
    } __attribute__((packed))
    header = {htobe64(NBD_REP_MAGIC), htobe32(option), htobe32(type), htobe32(len)};
    if (nbd_write_full(fd, &header, sizeof header) < 0)
        return -1;
    return len ? nbd_write_full(fd, data, len) : 0;
}

static int send_info_export(struct nbd_connection *conn, uint32_t option)
{
    struct {
        uint16_t type;
        uint64_t size;
        uint16_t flags;
    } __attribute__((packed)) info = {htobe16(NBD_INFO_EXPORT), htobe64(conn->server->backend.size),
                                      htobe16(nbd_transmission_flags(conn))};
    return nbd_option_reply(conn->fd, option, NBD_REP_INFO, &info, sizeof info);
}

static int send_info_block_size(struct nbd_connection *conn, uint32_t option)
{
    struct {
        uint16_t type;
        uint32_t minimum, preferred, maximum;
    } __attribute__((packed)) info = {htobe16(NBD_INFO_BLOCK_SIZE), htobe32(1), htobe32(4096),
                                      htobe32(conn->server->config.max_request)};
    return nbd_option_reply(conn->fd, option, NBD_REP_INFO, &info, sizeof info);
}

static int send_info_text(struct nbd_connection *conn, uint32_t option, uint16_t type,
                          const char *text)
{
    size_t len = strnlen(text, 4096);
    CLEANUP_FREE char *buf = malloc(2 + len);
    if (!buf)
        return -1;
    uint16_t be = htobe16(type);
    memcpy(buf, &be, 2);
    memcpy(buf + 2, text, len);
    return nbd_option_reply(conn->fd, option, NBD_REP_INFO, buf, (uint32_t)(2 + len));
}

bool nbd_export_known(const struct nbd_server *server, const char *name, size_t len)
{
    return !server->export_name ||
           (strlen(server->export_name) == len && memcmp(server->export_name, name, len) == 0);
}

/* Parses the payload of INFO/GO: name and requested info types. */
static int parse_info_request(const char *data, uint32_t len, char **name, uint16_t **requests,
                              uint16_t *n_requests)
{
    uint32_t name_len;
    if (len < 6)
        return -1;
    memcpy(&name_len, data, 4);
    name_len = be32toh(name_len);
    if (name_len > len - 6)
        return -1;
    memcpy(n_requests, data + 4 + name_len, 2);
    *n_requests = be16toh(*n_requests);
    if (len != 6 + name_len + 2u * *n_requests)
        return -1;
    *name = strndup(data + 4, name_len);
    *requests = malloc(2u * *n_requests + 2);
    if (!*name || !*requests)
        return -1;
    for (uint16_t i = 0; i < *n_requests; i++) {
        memcpy(&(*requests)[i], data + 6 + name_len + 2 * i, 2);
        (*requests)[i] = be16toh((*requests)[i]);
    }
    return 0;
}

/* Answers INFO or GO; returns 1 to start transmission, 0 to go on, -1 to close. */
static int option_info(struct nbd_connection *conn, uint32_t option, const char *data, uint32_t len)
{
    CLEANUP_FREE char *name = NULL;
    CLEANUP_FREE uint16_t *requests = NULL;
    uint16_t n = 0;
    int r;
    if (parse_info_request(data, len, &name, &requests, &n) < 0)
        return nbd_option_reply(conn->fd, option, NBD_REP_ERR_INVALID, NULL, 0);
    if (!nbd_export_known(conn->server, name, strlen(name))) {
        r = nbd_option_reply(conn->fd, option, NBD_REP_ERR_UNKNOWN, NULL, 0);
    } else {
        r = send_info_export(conn, option);
        for (uint16_t i = 0; r == 0 && i < n; i++) {
            if (requests[i] == NBD_INFO_NAME)
                r = send_info_text(conn, option, NBD_INFO_NAME, name);
            else if (requests[i] == NBD_INFO_DESCRIPTION && conn->server->description)
                r = send_info_text(conn, option, NBD_INFO_DESCRIPTION, conn->server->description);
        }
        if (r == 0)
            r = send_info_block_size(conn, option);
        if (r == 0)
            r = nbd_option_reply(conn->fd, option, NBD_REP_ACK, NULL, 0);
        if (r == 0 && option == NBD_OPT_GO)
            r = 1;
    }
    return r;
}

static int option_list(struct nbd_connection *conn, uint32_t len)
{
    if (len != 0)
        return nbd_option_reply(conn->fd, NBD_OPT_LIST, NBD_REP_ERR_INVALID, NULL, 0);
    const char *name = conn->server->export_name ? conn->server->export_name : "";
    uint32_t name_len = (uint32_t)strlen(name), be = htobe32(name_len);
    CLEANUP_FREE char *buf = malloc(4 + name_len);
    if (!buf)
        return -1;
    memcpy(buf, &be, 4);
    memcpy(buf + 4, name, name_len);
    int r = nbd_option_reply(conn->fd, NBD_OPT_LIST, NBD_REP_SERVER, buf, 4 + name_len);
    return r == 0 ? nbd_option_reply(conn->fd, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0) : -1;
}

/* Structured replies from now on; asking twice is harmless. */
static int option_structured_reply(struct nbd_connection *conn, uint32_t len)
{
    if (len != 0)
        return nbd_option_reply(conn->fd, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_INVALID, NULL, 0);
    conn->structured = true;
    return nbd_option_reply(conn->fd, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0);
}

/* The old way into transmission: no error reply exists, so an unknown
 * export closes the connection. */
static int option_export_name(struct nbd_connection *conn, const char *data, uint32_t len)
{
    if (!nbd_export_known(conn->server, data, len)) {
        nbd_log(conn->server, LOG_WARN, "NBD client asked for an unknown export; closing");
        return -1;
    }
    struct {
        uint64_t size;
        uint16_t flags;
        char zeroes[124];
    } __attribute__((packed))
    reply = {htobe64(conn->server->backend.size), htobe16(nbd_transmission_flags(conn)), {0}};
    size_t reply_len = conn->no_zeroes ? 10 : sizeof reply;
    return nbd_write_full(conn->fd, &reply, reply_len) == 0 ? 1 : -1;
}

/* Reads and answers one option: 1 = transmission, 0 = next option, -1 = close. */
static int negotiate_option(struct nbd_connection *conn)
{
    struct {
        uint64_t magic;
        uint32_t option, len;
    } __attribute__((packed)) header;
    if (nbd_read_full(conn->fd, &header, sizeof header) < 0)
        return -1;
    if (be64toh(header.magic) != NBD_IHAVEOPT) {
        nbd_log(conn->server, LOG_WARN, "NBD option with a bad magic; closing the connection");
        return -1;
    }
    uint32_t option = be32toh(header.option), len = be32toh(header.len);
    /* No option we know is this long, and skipping gigabytes to answer
     * "unsupported" is not worth it: the spec lets us close instead. */
    if (len > MAX_OPTION_LENGTH) {
        nbd_log(conn->server, LOG_WARN, "NBD option of %u bytes is too long; closing", len);
        return -1;
    }
    CLEANUP_FREE char *data = malloc(len + 1);
    if (!data || nbd_read_full(conn->fd, data, len) < 0)
        return -1;
    int r;
    switch (option) {
    case NBD_OPT_EXPORT_NAME:
        r = option_export_name(conn, data, len);
        break;
    case NBD_OPT_GO:
    case NBD_OPT_INFO:
        r = option_info(conn, option, data, len);
        break;
    case NBD_OPT_LIST:
        r = option_list(conn, len);
        break;
    case NBD_OPT_STRUCTURED_REPLY:
        r = option_structured_reply(conn, len);
        break;
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        r = nbd_option_meta_context(conn, option, data, len);
        break;
    case NBD_OPT_ABORT:
        nbd_option_reply(conn->fd, option, NBD_REP_ACK, NULL, 0);
        r = -1;
        break;
    default:
        r = nbd_option_reply(conn->fd, option, NBD_REP_ERR_UNSUP, NULL, 0);
        break;
    }
    return r;
}

int nbd_handshake(struct nbd_connection *conn)
{
    struct {
        uint64_t magic, ihaveopt;
        uint16_t flags;
    } __attribute__((packed)) greeting = {htobe64(NBD_MAGIC), htobe64(NBD_IHAVEOPT),
                                          htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)};
    uint32_t client_flags;
    if (nbd_write_full(conn->fd, &greeting, sizeof greeting) < 0 ||
        nbd_read_full(conn->fd, &client_flags, 4) < 0)
        return -1;
    client_flags = be32toh(client_flags);
    if (client_flags & ~(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)) {
        nbd_log(conn->server, LOG_WARN, "NBD client sent unknown flags 0x%x; closing",
                client_flags);
        return -1;
    }
    conn->no_zeroes = client_flags & NBD_FLAG_NO_ZEROES;
    for (int i = 0; i < MAX_OPTIONS; i++) {
        int r = negotiate_option(conn);
        if (r != 0)
            return r > 0 ? 0 : -1;
    }
    nbd_log(conn->server, LOG_WARN, "NBD client sent %d options without starting; closing",
            MAX_OPTIONS);
    return -1;
}
