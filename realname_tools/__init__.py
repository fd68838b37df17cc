"""Offline tools that share the service's code paths but are not part of the service: the benchmark,
the scripted WebRTC customer, the ID-card maker, plotting and evaluation reports.

The service (`server/`) never imports this package; `python -m server <tool>` dispatches here."""
