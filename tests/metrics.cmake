# SPDX-License-Identifier: MIT
# Tests: the /metrics endpoints of both daemons (promtool, a real Prometheus).
godwit_add_script_test(test-metrics test-metrics.sh metrics grpc)
godwit_add_script_test(test-metrics-prometheus test-metrics-prometheus.sh metrics grpc)
