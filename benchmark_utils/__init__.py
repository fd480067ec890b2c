"""Shared machinery of the bilevel imaging benchmark (see ALGORITHMS.md)."""
