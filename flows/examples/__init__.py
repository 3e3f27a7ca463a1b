"""Worked examples of extending Shrinkwatch (docs/EXTENDING.md); the test suite runs them."""
