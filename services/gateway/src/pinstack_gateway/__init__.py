"""Pinstack gateway."""
