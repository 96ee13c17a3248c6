"""Backends decide where agents run and how they find each other.

Profiling, mapping and dispatch never depend on the backend.
"""
