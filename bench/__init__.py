"""Benchmarks: each script runs from the repository root as ``python -m bench.<name>`` (``--help`` says
what it measures); what they share is in :mod:`bench.common`; their figures are in bench/RESULTS.md."""
