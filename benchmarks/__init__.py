"""Benchmark scripts (run as `python benchmarks/NAME.py`); a package so that tests import these
and not another distribution's top-level `benchmarks` (pyarrow 17 installs one)."""
