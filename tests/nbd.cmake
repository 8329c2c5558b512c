# Tests: the NBD server library (in-process, libnbd) and real clients.
godwit_add_test(nbd-test SOURCES nbd-test.c LIBS godwit_nbd PkgConfig::LIBNBD)
godwit_add_script_test(nbd-clients nbd-clients.sh)
