"""Command-line entry points (thin click groups)."""
