"""Shared machinery of the bilevel imaging benchmark (see docs/maths.md)."""
