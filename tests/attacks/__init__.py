"""Attacks against the real server, grouped so that a reader finds them in one place."""
