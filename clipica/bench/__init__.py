"""Benchmarks behind ``clipica bench``: one module per target, ratios against a same-run baseline."""
