"""Pinstack auth."""
