"""Pinstack common."""
