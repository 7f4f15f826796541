"""Integration tests: a real tritonserver (dltk serve) and perf_analyzer on loopback."""
