/* SPDX-License-Identifier: MIT */
/* Listen addresses: a host (name, IPv4, or IPv6 in brackets) and a decimal
 * port from 0 to 65535, resolved with getaddrinfo (first answer wins). */
#include "host-port.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits TEXT into HOST (brackets removed) and PORT; -1 if malformed. */
static int split(const char *text, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || strlen(colon + 1) == 0 || strlen(colon + 1) >= portlen)
        return -1;
    const char *start = text, *end = colon;
    if (text[0] == '[') {
        if (end[-1] != ']' || end - text < 3)
            return -1;
        start++, end--;
    } else if (memchr(text, ':', (size_t)(colon - text))) {
        return -1; /* an IPv6 address needs brackets */
    }
    if ((size_t)(end - start) >= hostlen)
        return -1;
    snprintf(host, hostlen, "%.*s", (int)(end - start), start);
    snprintf(port, portlen, "%s", colon + 1);
    char *stop;
    unsigned long value = strtoul(port, &stop, 10);
    return port[0] >= '0' && port[0] <= '9' && *stop == '\0' && value <= 65535 ? 0 : -1;
}

int host_port_resolve(const char *text, struct sockaddr_storage *addr, socklen_t *addr_len,
                      char *err, size_t errlen)
{
    char host[256], port[8];
    if (split(text, host, sizeof host, port, sizeof port) < 0) {
        snprintf(err, errlen, "\"%s\" is not HOST:PORT (a port from 0 to 65535; [v6]:PORT)", text);
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai;
    int r = getaddrinfo(host, port, &hints, &ai);
    if (r != 0) {
        snprintf(err, errlen, "\"%s\" does not resolve: %s", text, gai_strerror(r));
        return -1;
    }
    memcpy(addr, ai->ai_addr, ai->ai_addrlen);
    *addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}
