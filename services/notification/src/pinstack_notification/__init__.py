"""Pinstack notification."""
