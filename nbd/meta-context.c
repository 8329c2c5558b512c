/* SPDX-License-Identifier: MIT */
/* NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: the one context
 * this server has is base:allocation. LIST with no query, "base:" or
 * "base:allocation" names it; SET with "base:allocation" selects it (id 1)
 * and any SET first clears the selection. Queries in other namespaces, or
 * for other base: leaves, are ignored as the spec asks. Both need
 * structured replies first (NBD_REP_ERR_INVALID otherwise). */
#include "internal.h"

#include <string.h>

/* A query in the option's payload. */
struct query {
    const char *text;
    uint32_t len;
};

static bool query_is(const struct query *q, const char *text)
{
    return q->len == strlen(text) && memcmp(q->text, text, q->len) == 0;
}

static uint32_t read_be32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return be32toh(v);
}

/* Splits the payload into the export name and the queries; calls FOUND for
 * each query. -1 if it is malformed (a length running past the end, or
 * bytes left over). */
static int parse(const char *data, uint32_t len, struct query *name,
                 void (*found)(const struct query *q, void *arg), void *arg)
{
    if (len < 8)
        return -1;
    name->len = read_be32(data);
    if (name->len > len - 8)
        return -1;
    name->text = data + 4;
    uint32_t at = 4 + name->len, n = read_be32(data + at);
    at += 4;
    if (n > (len - at) / 4)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        if (len - at < 4)
            return -1;
        struct query q = {data + at + 4, read_be32(data + at)};
        if (q.len > len - at - 4)
            return -1;
        at += 4 + q.len;
        found(&q, arg);
    }
    return at == len ? 0 : -1;
}

/* What the queries asked for. */
struct wanted {
    bool list;  /* LIST (else SET) */
    bool count; /* any query at all */
    bool base_allocation;
};

static void match(const struct query *q, void *arg)
{
    struct wanted *w = arg;
    w->count = true;
    if (query_is(q, NBD_BASE_ALLOCATION) || (w->list && query_is(q, "base:")))
        w->base_allocation = true;
}

static int reply_context(int fd, uint32_t option, uint32_t id)
{
    char buf[4 + sizeof NBD_BASE_ALLOCATION - 1];
    uint32_t be = htobe32(id);
    memcpy(buf, &be, 4);
    memcpy(buf + 4, NBD_BASE_ALLOCATION, sizeof NBD_BASE_ALLOCATION - 1);
    return nbd_option_reply(fd, option, NBD_REP_META_CONTEXT, buf, sizeof buf);
}

int nbd_option_meta_context(struct nbd_connection *conn, uint32_t option, const char *data,
                            uint32_t len)
{
    int fd = conn->fd;
    bool list = option == NBD_OPT_LIST_META_CONTEXT;
    if (!list)
        conn->base_allocation = false; /* a SET replaces the selection, even when it fails */
    if (!conn->structured)
        return nbd_option_reply(fd, option, NBD_REP_ERR_INVALID, NULL, 0);
    struct wanted w = {.list = list};
    struct query name;
    if (parse(data, len, &name, match, &w) < 0)
        return nbd_option_reply(fd, option, NBD_REP_ERR_INVALID, NULL, 0);
    if (!nbd_export_known(conn->server, name.text, name.len))
        return nbd_option_reply(fd, option, NBD_REP_ERR_UNKNOWN, NULL, 0);
    if (list && !w.count)
        w.base_allocation = true; /* no query: every context there is */
    if (w.base_allocation && reply_context(fd, option, list ? 0 : NBD_BASE_ALLOCATION_ID) < 0)
        return -1;
    if (!list)
        conn->base_allocation = w.base_allocation;
    return nbd_option_reply(fd, option, NBD_REP_ACK, NULL, 0);
}
