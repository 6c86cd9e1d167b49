"""`require` fails for a promised module that cannot be imported, and skips only the others."""

import sys

import pytest

from tests.conftest import require


def test_a_dev_extra_module_that_cannot_be_imported_fails(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(pytest.fail.Exception, match=r"ray cannot be imported.*dev extra"):
        require("ray")


def test_a_module_named_by_require_modules_fails(monkeypatch):
    monkeypatch.setitem(sys.modules, "mazelib", None)
    monkeypatch.setenv("REQUIRE_MODULES", "foo, mazelib")
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_MODULES"):
        require("mazelib")


def test_any_other_missing_module_skips(monkeypatch):
    monkeypatch.setitem(sys.modules, "mazelib", None)
    monkeypatch.delenv("REQUIRE_MODULES", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require("mazelib")


def test_an_importable_module_is_returned():
    assert require("json") is sys.modules["json"]
