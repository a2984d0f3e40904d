"""Pinstack user."""
