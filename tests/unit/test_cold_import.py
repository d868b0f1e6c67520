"""Cold starts: no function imports the Kubernetes client before it reaches a cluster.

Importing kubernetes.client takes about half a second; the guard, which halts runs on alarms, and
every other function would pay it at each cold start. Checked in a fresh interpreter, as a cold
start gets (this test process has long imported kubernetes). bench/cold_import.py has the figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    """bench/cold_import.py, which times what this test guards: one list of handlers and one
    environment (the stack's settings with dummy values) for both."""
    spec = importlib.util.spec_from_file_location("cold_import_bench", ROOT / "bench" / "cold_import.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()
HANDLERS: list[Path] = BENCH.HANDLERS
ENVIRONMENT: dict[str, str] = BENCH.ENVIRONMENT
# Imports each module in turn, as Lambda loads a handler, and names the first that pulled kubernetes in.
CHILD = """
import importlib, importlib.util, json, sys
for what in sys.argv[1:]:
    if what.endswith(".py"):
        spec = importlib.util.spec_from_file_location("app_" + what.split("/")[-2], what)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    else:
        importlib.import_module(what)
    loaded = sorted(name for name in sys.modules if name.split(".")[0] == "kubernetes")
    if loaded:
        print(json.dumps({"culprit": what, "kubernetes": loaded[:5]}))
        break
else:
    print(json.dumps({"culprit": None, "chaosplane": "chaosplane.wiring" in sys.modules}))
"""


def test_no_function_imports_kubernetes_at_cold_start() -> None:
    # Given a fresh interpreter with the functions' environment (the conftest's dummy credentials)
    modules = ["chaosplane.faults.catalogue", "chaosplane.wiring", *(str(path) for path in HANDLERS)]

    # When it imports the catalogue, the wiring and every function's handler, as Lambda does
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, *modules],
        capture_output=True,
        text=True,
        env={**os.environ, **ENVIRONMENT},
        cwd=ROOT,
        timeout=120,
        check=False,
    )

    # Then all of them load, and none of them imports kubernetes
    assert completed.returncode == 0, completed.stderr
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome["culprit"] is None, f"importing {outcome['culprit']} imported {outcome['kubernetes']}"
    assert HANDLERS and outcome["chaosplane"], outcome  # the handlers were found and really imported
