"""Evals and benchmarks: datasets, metrics, runners, reports."""

__all__: list[str] = []
