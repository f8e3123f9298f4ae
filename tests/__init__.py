"""Filrouge test suites."""
