"""Import a user's module by name, also from the working directory."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any


def import_module_here(module_name: str) -> Any:
    """Import ``module_name``, also from the working directory: ``python -m`` looks there but
    a console script (``robot-rl``) does not, and a user's ``my_envs:make`` lives there."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        here = os.getcwd()
        if e.name != module_name.partition(".")[0] or here in sys.path or "" in sys.path:
            raise
        sys.path.append(here)
        return importlib.import_module(module_name)
