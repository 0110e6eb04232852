"""Benchmarks of remix-pipeline against its peers and against the server's own limits.

Run `.venv/bin/python -m benchmarks.run` (or `--quick`) with the test extras installed;
results go to `benchmarks/RESULTS.md`.
"""
