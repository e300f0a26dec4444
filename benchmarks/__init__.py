"""Benchmarks: each measures a stage against its own ceiling in the same run and prints the ratio.

`make bench` (python -m benchmarks) runs them all and prints one table; `python -m benchmarks.<name>` runs one.
"""
