"""The structure rules a newcomer relies on, checked from the source itself.

- The layers (pyproject's import-linter contracts) hold, and the contract really fails the run
  when someone adds an import up the layers.
- No import inside a function dodges them: a first-party import in a function body is allowed
  only where Django needs it (an app's ``ready()``, a Celery signal handler that runs before
  Django is set up), and every import in a function body says why on the line above.
- No module reaches into another's private names (``from x import _y`` or ``x._y``).
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "config", "backoffice", "privacy", "web", "validation", "focusgroups", "surveys", "panels", "personas", "llm",
    "billing", "usage",
)  # fmt: skip
FIRST_PARTY = (*APPS, "cohorta")
# Where Django (or Celery before Django) needs an import to wait until the app registry is ready.
INNER_FIRST_PARTY_ALLOWED = {"apps.py": {"ready"}, "config/celery.py": {"warm_up"}}


def app_sources() -> list[Path]:
    files = []
    for package in FIRST_PARTY:
        files += [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    return sorted(files)


def first_party(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in FIRST_PARTY


def functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_the_layer_contracts_hold():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "0 broken" in result.stdout


@pytest.mark.slow
def test_an_import_up_the_layers_breaks_the_contract(tmp_path):
    """A copy of the code with usage importing focus groups (a layer above it) fails the check,
    and the report names the offending line."""
    for package in FIRST_PARTY:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    probe = tmp_path / "usage" / "upward_probe.py"
    probe.write_text("from focusgroups.models import FocusGroup\n\nFocusGroup\n")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert "usage.upward_probe -> focusgroups.models" in result.stdout


def test_imports_inside_functions_are_only_where_django_needs_them_and_say_why():
    problems = []
    for path in app_sources():
        relative = path.relative_to(ROOT).as_posix()
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        allowed = INNER_FIRST_PARTY_ALLOWED.get(relative) or INNER_FIRST_PARTY_ALLOWED.get(path.name, set())
        for function in functions(tree):
            for node in ast.walk(function):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                modules = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                where = f"{relative}:{node.lineno}"
                if any(first_party(m) for m in modules) and function.name not in allowed:
                    problems.append(f"{where} imports {modules[0]} inside {function.name}()")
                # The reason is the comment right above, or above the block of imports it belongs to.
                above = node.lineno - 2
                while above > 0 and (not lines[above].strip() or lines[above].strip().startswith(("import ", "from "))):
                    above -= 1
                if not lines[above].strip().startswith("#"):
                    problems.append(f"{where}: an import inside {function.name}() needs a one-line reason above it")
    assert not problems, "\n".join(problems)


# Underscored by Django to keep them out of field names, documented and public all the same.
DJANGO_MODEL_API = {"_meta", "_default_manager", "_base_manager", "_state"}


def test_no_module_uses_another_modules_private_names():
    problems = []
    for path in app_sources():
        relative = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text())
        modules = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and first_party(node.module):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        problems.append(f"{relative}:{node.lineno} imports {node.module}.{alias.name}")
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if first_party(alias.name):
                        modules[alias.asname or alias.name.split(".")[0]] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in DJANGO_MODEL_API
            ):
                problems.append(f"{relative}:{node.lineno} uses {modules[node.value.id]}.{node.attr}")
    assert not problems, "\n".join(problems)


# --- ownership ----------------------------------------------------------------------------------

OWNER_KEYWORDS = {"owner", "owner_id", "user", "user_id"}
LOOKUPS = {"filter", "get", "exclude", "get_object_or_404", "get_list_or_404"}


def web_entry_points() -> list[Path]:
    """Modules that answer requests or sockets: pages, API views, consumers."""
    names = ("views", "api", "consumers", "pages")
    return [p for p in app_sources() if p.stem.split("_")[0] in names or p.parent.name in names]


def test_views_api_views_and_consumers_never_filter_by_owner_themselves():
    """They get owned objects from ``<app>/access.py`` and lists from selectors: an owner filter written
    inline is how one view forgets it."""
    problems = []
    for path in web_entry_points():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            owner = [k.arg for k in node.keywords if k.arg and (k.arg in OWNER_KEYWORDS or k.arg.endswith("__owner"))]
            if name in LOOKUPS and owner:
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}({owner[0]}=…)")
    assert not problems, "\n".join(problems)


def test_every_ownership_helper_has_the_one_shape():
    """``get_<object>_for_user(user, pk, *, for_write=False, <parent>_id=…)`` in ``<app>/access.py``."""
    import importlib
    import inspect

    modules = [p for p in app_sources() if p.name == "access.py" and p.parent != ROOT / "cohorta"]
    assert len(modules) >= 5, modules
    helpers = 0
    for path in modules:
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__ or name.startswith("_"):
                continue
            assert name.startswith("get_") and name.endswith("_for_user"), f"{module.__name__}.{name}"
            parameters = list(inspect.signature(function).parameters.values())
            positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
            keyword_only = {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}
            assert positional == ["user", "pk"], f"{module.__name__}.{name}{inspect.signature(function)}"
            assert keyword_only.get("for_write") is False, f"{module.__name__}.{name} needs for_write=False"
            parents = [k for k in keyword_only if k != "for_write"]
            assert all(k.endswith("_id") for k in parents), f"{module.__name__}.{name}: parents go by id"
            helpers += 1
    assert helpers >= 10
