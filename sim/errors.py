"""Errors raised by the simulation package for bad user input."""

from __future__ import annotations


class SimError(ValueError):
    """Unknown task/backend name, wrong action shape, NaN actions, invalid options."""


class EnvContractError(SimError):
    """An env handed to a loop does not implement the ``VecEnv`` contract (names what is missing)."""


class EnvSpecError(SimError):
    """An env spec (name, ``module:factory``, gymnasium id) cannot be resolved or built."""
