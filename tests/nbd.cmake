# Tests: the NBD server library (nbd/), driven by libnbd, raw sockets, and
# the real nbdinfo / nbdcopy clients.
add_library(godwit_test_nbd_memory STATIC nbd-memory.c)
target_link_libraries(godwit_test_nbd_memory PUBLIC godwit_nbd)

godwit_add_test(nbd-libnbd SOURCES nbd-libnbd.c LIBS godwit_test_nbd_memory PkgConfig::LIBNBD)
