# SPDX-License-Identifier: MIT
# Tests: what ships: the Dockerfile (checked without an engine) and the
# Kubernetes manifests (validated against the real schemas); with
# -DGODWIT_CONTAINER_TEST=ON (the "container" configuration of
# scripts/test.sh, minutes and root) also the image built by podman and
# migrations between its containers and Pods.
godwit_add_script_test(test-ship-dockerfile test-ship-dockerfile.sh ship)
add_test(NAME test-ship-k8s COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/validate-k8s.sh)
godwit_test_properties(test-ship-k8s 300 ship)
if(GODWIT_CONTAINER_TEST)
  add_test(NAME test-ship-container COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/container-test.sh)
  godwit_test_properties(test-ship-container 1200 container)
endif()
