# SPDX-License-Identifier: MIT
# Tests: unit tests of common/ (no servers).
godwit_add_test(unit-chunk SOURCES unit-chunk.c)
godwit_add_test(unit-dirty-set SOURCES unit-dirty-set.c ${CMAKE_SOURCE_DIR}/seeder/dirty-set.c)
target_include_directories(unit-dirty-set PRIVATE ${CMAKE_SOURCE_DIR}/seeder)
godwit_add_test(unit-options SOURCES unit-options.c)
godwit_add_test(unit-io SOURCES unit-io.c LIBS godwit_rpc)
godwit_add_test(linkem-check SOURCES linkem-check.c)
add_dependencies(linkem-check godwit-linkem)
