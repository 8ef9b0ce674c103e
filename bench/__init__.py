"""Benchmark of wa-sessions against GNU find on a synthetic fleet (`python -m bench.run --help`)."""
