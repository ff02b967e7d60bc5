"""Benchmark scripts (run them as files or with ``python -m benchmarks.<name>``); not part of the package."""
