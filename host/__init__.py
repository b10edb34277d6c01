"""Tern."""
