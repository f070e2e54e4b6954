"""Helpers of the bad-input battery (see ``conftest.py`` for what counts as a clean error)."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from robot_rl.cli import main

OUTCOMES: Counter[str] = Counter()
"""Outcome -> count over the session; printed by conftest's terminal summary."""


@dataclass(frozen=True)
class Fixtures:
    """Read-only originals; cases copy what they change."""

    root: Path
    dataset: Path
    policy: Path


def tree_digest(root: Path) -> dict[str, str]:
    """relative path -> sha256 (or 'dir') of everything under ``root``."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + str(path.readlink())
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def classify(
    args: list[str], roots: list[Path], capsys: pytest.CaptureFixture[str]
) -> tuple[str, str]:
    """Run ``robot-rl *args`` in-process; return (outcome, stderr)."""
    capsys.readouterr()
    before = {root: tree_digest(root) for root in roots}
    try:
        code = main(args)
    except BaseException as e:  # noqa: BLE001 - anything escaping main is a traceback
        captured = capsys.readouterr()
        return "traceback", f"{type(e).__name__}: {e}\n{captured.err}"
    captured = capsys.readouterr()
    err = captured.err
    after = {root: tree_digest(root) for root in roots}
    lost = any(
        after[root].get(rel) != digest for root in roots for rel, digest in before[root].items()
    )
    left = any(set(after[root]) - set(before[root]) for root in roots)
    lines = [line for line in err.splitlines() if line.strip()]
    if "Traceback" in err + captured.out:
        outcome = "traceback"
    elif lost:
        outcome = "data lost"
    elif code == 0:
        outcome = "silent accept"
    elif code == 2 and len(lines) == 1 and lines[0].startswith("error:") and not left:
        outcome = "clean error"
    else:
        outcome = f"messy error (exit {code}, {len(lines)} lines, leftovers {left})"
    return outcome, err


def assert_clean_error(
    args: list[str],
    roots: list[Path],
    capsys: pytest.CaptureFixture[str],
    match: str | None = None,
) -> str:
    """The battery's assertion: a clean one-line error (see the module docstring)."""
    outcome, err = classify(args, roots, capsys)
    log = os.environ.get("BATTERY_LOG")
    if log:
        with open(log, "a") as f:
            one_line = " ⏎ ".join(err.strip().splitlines())
            f.write(f"{outcome}\t{' '.join(args)}\t{one_line}\n")
    OUTCOMES["cases"] += 1
    OUTCOMES[outcome.split(" (")[0]] += 1
    assert outcome == "clean error", f"{outcome}: {err.strip()[-2000:]}"
    if match is not None:
        assert match.lower() in err.lower(), err
    return err
