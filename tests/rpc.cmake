# Tests: rpc.
