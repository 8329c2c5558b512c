/* SPDX-License-Identifier: MIT */
/* The serialized FileDescriptorSet of every proto in api/ (with imports),
 * generated at build time; the reflection service serves it. */
#ifndef GODWIT_DESCRIPTOR_SET_H
#define GODWIT_DESCRIPTOR_SET_H

#include <stddef.h>

extern const unsigned char godwit_descriptor_set[];
extern const size_t godwit_descriptor_set_len;

#endif
