/* SPDX-License-Identifier: MIT */
/* A tiny protobuf wire-format reader. */
#include "proto-wire.h"

static int read_varint(struct bytes *in, uint64_t *value)
{
    *value = 0;
    for (unsigned shift = 0; shift < 64 && in->len > 0; shift += 7) {
        uint8_t byte = *in->data++;
        in->len--;
        *value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return 0;
    }
    return -1;
}

int wire_next(struct bytes *in, struct field *f)
{
    uint64_t key;
    if (in->len == 0)
        return 1;
    if (read_varint(in, &key) < 0)
        return -1;
    f->number = (uint32_t)(key >> 3);
    f->type = (uint32_t)(key & 7);
    switch (f->type) {
    case 0:
        return read_varint(in, &f->varint);
    case 1:
    case 5: {
        size_t n = f->type == 1 ? 8 : 4;
        if (in->len < n)
            return -1;
        in->data += n, in->len -= n;
        return 0;
    }
    case 2:
        if (read_varint(in, &f->varint) < 0 || f->varint > in->len)
            return -1;
        f->value = (struct bytes){in->data, (size_t)f->varint};
        in->data += f->varint, in->len -= (size_t)f->varint;
        return 0;
    default:
        return -1;
    }
}
