"""Thin Twisted protocols that feed the pure cores and carry out their commands."""
