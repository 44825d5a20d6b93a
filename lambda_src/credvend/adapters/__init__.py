"""Adapters to the outside world (STS); the domain sees them only through ports."""
