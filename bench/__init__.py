"""Benchmarks for tsunagu (see BENCHMARKS.md). Not part of the installed package."""
