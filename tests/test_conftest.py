"""`require` fails for a promised module that cannot be imported, and skips only the others."""

import sys

import pytest

from tests.conftest import require


def test_a_dev_extra_module_that_cannot_be_imported_fails(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(pytest.fail.Exception, match=r"ray cannot be imported.*dev extra"):
        require("ray")


def test_a_module_named_by_require_modules_fails(monkeypatch):
    monkeypatch.setitem(sys.modules, "not_a_dev_module", None)
    monkeypatch.setenv("REQUIRE_MODULES", "foo, not_a_dev_module")
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_MODULES"):
        require("not_a_dev_module")


def test_any_other_missing_module_skips(monkeypatch):
    monkeypatch.setitem(sys.modules, "not_a_dev_module", None)
    monkeypatch.delenv("REQUIRE_MODULES", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require("not_a_dev_module")


def test_an_importable_module_is_returned():
    assert require("json") is sys.modules["json"]
