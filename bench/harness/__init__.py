"""The benchmark harness behind bench/compare (see bench/README.md)."""
