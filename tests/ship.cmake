# SPDX-License-Identifier: MIT
# Tests: what ships: the Dockerfile (checked without an engine) and the
# Kubernetes manifests (validated against the real schemas).
godwit_add_script_test(ship-dockerfile ship-dockerfile.sh)
add_test(NAME ship-k8s COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/validate-k8s.sh)
set_tests_properties(ship-k8s PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
