# SPDX-License-Identifier: MIT
# Turns the binary descriptor set into a C array (cmake -P script mode):
#   const unsigned char godwit_descriptor_set[]; const size_t godwit_descriptor_set_len;
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n  " bytes "${bytes}")
file(WRITE ${OUT}
  "/* Generated from the api/ protos by embed.cmake: the serialized\n"
  " * FileDescriptorSet served by the reflection service. */\n"
  "#include <stddef.h>\n"
  "const unsigned char godwit_descriptor_set[] = {\n  ${bytes}\n};\n"
  "const size_t godwit_descriptor_set_len = ${len};\n")
