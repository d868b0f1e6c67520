"""Init is snapshot-safe: SnapStart (template.yaml, the API and the guard) restores many execution
environments from one initialised snapshot, so nothing unique may be made at import time. Ids come
from uuid4 and `secrets` (os.urandom, per call) and sampling from SystemRandom or an injected
generator, all at call time; this holds the package to it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "layers" / "chaosplane" / "chaosplane"
# Module-level generators and clocks whose state a snapshot would freeze and every restore share.
SHARED_STATE_CALLS = {
    ("random", name)
    for name in (
        "random",
        "randint",
        "randrange",
        "choice",
        "choices",
        "sample",
        "shuffle",
        "seed",
        "uniform",
    )
} | {("uuid", "uuid1")}


def _calls(tree: ast.AST) -> list[tuple[str, str, int]]:
    return [
        (node.func.value.id, node.func.attr, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    ]


def _module_level_calls(tree: ast.Module) -> list[tuple[str, str, int]]:
    """Calls that run at import: in module-level statements, not inside a def or a lambda."""
    found: list[tuple[str, str, int]] = []
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        found += [c for c in _calls(statement) if not _inside_function(statement, c[2])]
    return found


def _inside_function(statement: ast.stmt, line: int) -> bool:
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        and node.lineno <= line <= (node.end_lineno or node.lineno)
        for node in ast.walk(statement)
    )


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path))) for path in sorted(PACKAGE.rglob("*.py"))]


def test_no_code_draws_from_a_generator_a_snapshot_would_share() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} {module}.{name}()"
        for path, tree in _modules()
        for module, name, line in _calls(tree)
        if (module, name) in SHARED_STATE_CALLS
    ]
    assert not offending, "use random.SystemRandom, secrets or uuid4 at call time:\n" + "\n".join(offending)


def test_nothing_unique_is_made_at_import_time() -> None:
    unique_makers = {
        ("uuid", "uuid4"),
        ("secrets", "token_hex"),
        ("secrets", "token_urlsafe"),
        ("os", "urandom"),
    }
    unique_makers |= {("random", "Random"), ("time", "time"), ("datetime", "now")}
    offending = [
        f"{path.relative_to(ROOT)}:{line} {module}.{name}()"
        for path, tree in _modules()
        for module, name, line in _module_level_calls(tree)
        if (module, name) in unique_makers
    ]
    assert not offending, "made once at init, then shared by every restored environment:\n" + "\n".join(
        offending
    )


def test_the_check_sees_what_it_looks_for() -> None:
    # The two walks above find a call where it would be made, so a pass means there is none.
    tree = ast.parse("import uuid, random\nX = uuid.uuid4()\ndef f():\n    return random.choice([1])\n")
    assert _module_level_calls(tree) == [("uuid", "uuid4", 2)]
    assert ("random", "choice", 4) in _calls(tree)
