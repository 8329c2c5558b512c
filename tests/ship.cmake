# SPDX-License-Identifier: MIT
# Tests: what ships: the Dockerfile (checked without an engine) and the
# Kubernetes manifests (validated against the real schemas).
godwit_add_script_test(test-ship-dockerfile test-ship-dockerfile.sh ship)
add_test(NAME test-ship-k8s COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/validate-k8s.sh)
godwit_test_properties(test-ship-k8s 300 ship)
