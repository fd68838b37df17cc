"""Browser tests: a real Chromium walks the hosted pages against the real app (see e2e/conftest.py)."""
