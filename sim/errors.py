"""Errors raised by the simulation package for bad user input."""

from __future__ import annotations


class SimError(ValueError):
    """Unknown task/backend name, wrong action shape, NaN actions, invalid options."""
