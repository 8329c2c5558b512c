# Tests: nbd.
