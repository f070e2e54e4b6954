"""Rewrite the golden outputs: ``python -m tests.golden.regenerate`` from the repository root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if __name__ == "__main__":
    os.environ["ROBOT_RL_REGENERATE_GOLDEN"] = "1"
    here = Path(__file__).parent
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", str(here / "test_golden.py")]))
