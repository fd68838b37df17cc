"""Presentation-attack and injection risk: pure decisions over numbers measured elsewhere (no I/O)."""
