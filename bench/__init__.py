"""Benchmarks (figures beside their baselines, not pass/fail): `python -m bench --help`."""
