"""`require`: the one way a test asks for a module that `pip install -e .` does not bring.

pytest itself comes with the dev extra (README, "Set up", step 3), and the dev extra promises
matplotlib, moviepy, pygame and the tune (ray, optuna), minigrid and popgym (popgym, mazelib)
extras. A test run without one of them is a broken install, not a smaller suite, so a test that
needs one fails rather than skips, here and in CI alike: `pytest.importorskip("ray")` would turn
a Ray that is broken at the floors (.ci/lower_bounds.sh) into a skipped module and a green run.

Other modules skip when they cannot be imported, unless the environment variable
REQUIRE_MODULES names them (separated by spaces or commas), so that CI can refuse to skip them.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

DEV_EXTRA = frozenset(
    {"matplotlib", "moviepy", "pygame", "ray", "optuna", "minigrid", "popgym", "mazelib"}
)
"""The modules of pyproject.toml's `dev` extra (`tune`'s, `minigrid`'s and `popgym`'s included)
that tests import."""


def require(module: str) -> ModuleType:
    """`module`, imported. If it cannot be imported, the calling test fails (a whole test module,
    when called at its top) if `module` belongs to the dev extra or REQUIRE_MODULES names it, and
    is skipped otherwise."""
    __tracebackhide__ = True  # reports name the caller's line, as pytest.importorskip's do
    try:
        return importlib.import_module(module)
    except ImportError as e:
        problem = f"{module} cannot be imported ({type(e).__name__}: {e})"
        top = module.partition(".")[0]
        if top in DEV_EXTRA:
            why = 'the dev extra promises it: pip install -e ".[dev]"'
        elif top in os.environ.get("REQUIRE_MODULES", "").replace(",", " ").split():
            why = "REQUIRE_MODULES names it"
        else:
            pytest.skip(problem, allow_module_level=True)
        pytest.fail(f"{problem}; {why}", pytrace=False)
