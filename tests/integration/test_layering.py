"""Layering: domain packages never import Flask (or the web package); config imports no domain
package. Parsed with ``ast``, so imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT

DOMAIN = ("workflow", "org", "customers", "campaigns", "tasks", "appraisal")
WEB_MODULES = (
    "flask",
    "flask_babel",
    "flask_login",
    "flask_wtf",
    "flask_limiter",
    "flask_openapi3",
    "werkzeug",
    "web",
)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def python_files(package: str) -> list[Path]:
    return sorted((PROJECT_ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", DOMAIN)
def test_domain_package_does_not_import_flask(package: str) -> None:
    files = python_files(package)
    assert files, f"{package}/ has no modules"
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{line} imports {name}"
        for path in files
        for line, name in imported_modules(path)
        if top(name) in WEB_MODULES
    ]
    assert offenders == []


def test_config_imports_no_domain_or_web_package() -> None:
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{line} imports {name}"
        for path in python_files("config")
        for line, name in imported_modules(path)
        if top(name) in DOMAIN + WEB_MODULES
    ]
    assert offenders == []


def test_the_checker_sees_every_import_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import flask\nfrom flask_login import current_user\n"
        "def f():\n    from web.auth import x\n    import importlib\n    importlib.import_module('flask_wtf')\n"
        "from . import sibling\n"
    )
    names = [name for _line, name in imported_modules(sample)]
    assert [n for n in names if top(n) in WEB_MODULES] == ["flask", "flask_login", "web.auth", "flask_wtf"]
