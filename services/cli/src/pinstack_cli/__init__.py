"""Pinstack cli."""
