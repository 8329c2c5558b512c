/* SPDX-License-Identifier: MIT */
/* "HOST:PORT" and "[V6]:PORT" listen addresses to socket addresses. */
#ifndef GODWIT_HOST_PORT_H
#define GODWIT_HOST_PORT_H

#include <stddef.h>
#include <sys/socket.h>

/* Resolves TEXT for listening (port 0 allowed: the kernel picks one).
 * -1 with one sentence in ERR if it is not HOST:PORT or does not resolve. */
int host_port_resolve(const char *text, struct sockaddr_storage *addr, socklen_t *addr_len,
                      char *err, size_t errlen);

#endif
