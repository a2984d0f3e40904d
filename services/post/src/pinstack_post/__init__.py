"""Pinstack post."""
