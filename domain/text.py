"""Marking user-facing text in modules that do not translate it themselves."""

from __future__ import annotations


def N_(message: str) -> str:
    """Marks a msgid for extraction (`pybabel extract -k N_`); the edge translates it later, per user."""
    return message
