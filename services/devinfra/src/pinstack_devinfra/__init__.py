"""Pinstack devinfra."""
