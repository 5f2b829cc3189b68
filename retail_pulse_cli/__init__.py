"""Command-line client of the Retail Pulse API (local stack or deployed)."""
