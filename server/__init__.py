"""Realname: self-hosted identity self-registration with active liveness and face match."""

__version__ = "0.1.0"
