"""Fault injection against real processes: PostgreSQL, two Realname instances, paced scripted customers
and a real webhook receiver, with one fault injected at a time (see `faults.py`). Run by hand with
`python -m realname_tools.chaos FAULT` (from the repository root) or by tests/test_chaos.py. Each run
reports what the issue asks of every fault: sessions started, decided, lost, decided twice, webhooks
expected and delivered, errors the customers saw and the time to recover."""
