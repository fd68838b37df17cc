"""Helpers for the browser suite: fake-camera files, a webhook receiver, Chromium launch settings."""
