"""Pinstack relation."""
