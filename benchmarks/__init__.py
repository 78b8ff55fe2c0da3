"""Benchmarks and validations, run as modules: ``python -m benchmarks.<name>``."""
