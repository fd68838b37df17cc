"""`python -m server bench`: concurrent live checks on one machine, through the real API and real WebRTC
(see docs/benchmarks.md). One module per concern; `cli` builds the command from `options`."""
