"""Benchmarks of remix-pipeline against its peers and against the server's own limits.

Run `python -m benchmarks.run` (or `--quick`); results go to `benchmarks/RESULTS.md`.
"""
