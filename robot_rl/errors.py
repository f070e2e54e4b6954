"""Errors a user can act on. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations


class RobotRLError(Exception):
    """Base class: bad input, missing files, invalid configs. Message names the problem."""


class DatasetError(RobotRLError):
    """A dataset file is missing, corrupt, or does not match what it is used for."""


class CheckpointError(RobotRLError):
    """A policy directory is missing, incomplete, or inconsistent."""


class ConfigError(RobotRLError):
    """A configuration value is invalid (unknown name, inconsistent sizes)."""


class OutputExistsError(RobotRLError):
    """An output path exists and --overwrite was not given."""


class OutputError(RobotRLError):
    """An output path cannot be written, is locked by another writer, or is not ours to replace."""
