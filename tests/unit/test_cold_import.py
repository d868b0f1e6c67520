"""Cold starts: each function imports only what it uses, and makes no AWS client before its first event.

What a cold start imports is deterministic where its time is not, so this is what is tested; the
times are bench/cold_import.py's figures. Each function is loaded in a fresh interpreter, as a cold
start gets (this test process has long imported everything), with the stack's environment.

The guard (the halt path: its cold start delays a halt) and the authorizer (in front of every
request) must not import the fault families; no function may import the Kubernetes
client or the EKS family before a run reaches a cluster (kubernetes.client alone takes about half a
second).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    """bench/cold_import.py, which times what this test guards: one list of handlers, one
    environment and one table of what each function must not import, for both."""
    spec = importlib.util.spec_from_file_location("cold_import_bench", ROOT / "bench" / "cold_import.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()
HANDLERS: dict[str, Path] = {BENCH.function_name(path): path for path in BENCH.HANDLERS}


def test_every_function_has_its_list_of_what_it_must_not_import() -> None:
    assert HANDLERS and set(HANDLERS) == set(BENCH.MUST_NOT_IMPORT)


@pytest.mark.parametrize("function", sorted(BENCH.MUST_NOT_IMPORT))
def test_a_cold_start_imports_only_what_its_function_uses_and_makes_no_client(function: str) -> None:
    # Given a fresh interpreter with the stack's environment (dummy values, no AWS endpoint)
    environment = {**os.environ, **BENCH.ENVIRONMENT}

    # When it loads the function's handler, as Lambda does
    completed = subprocess.run(
        [sys.executable, "-c", BENCH.CHILD, str(HANDLERS[function])],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=120,
        check=False,
    )

    # Then it loads, built from the wiring, with none of what it must not import and no AWS client
    assert completed.returncode == 0, completed.stderr
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert any(name.startswith("chaosplane.wiring.") for name in loaded["modules"]), "not built by the wiring"
    assert BENCH.imported(loaded["modules"], BENCH.MUST_NOT_IMPORT[function]) == []
    assert loaded["clients"] == [], "clients are made by the first event that needs them"


# Validates a pod fault's experiment, as the API's first experiment request does, and says
# whether that imported the Kubernetes client.
VALIDATE = """
import json, sys, uuid
from chaosplane.models import ExperimentSpec
ExperimentSpec.model_validate({"name": "n", "type": "pod-network-latency", "target": str(uuid.uuid4()),
                               "duration": 60, "parameters": {"delay_ms": 100}})
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] == "kubernetes")))
"""


def test_validating_an_experiment_does_not_import_the_kubernetes_client() -> None:
    # Given a fresh interpreter (the API's, at its first experiment request)
    # When it validates an experiment of an EKS fault (its parameters, through the catalogue)
    completed = subprocess.run(
        [sys.executable, "-c", VALIDATE],
        capture_output=True,
        text=True,
        env={**os.environ, **BENCH.ENVIRONMENT},
        cwd=ROOT,
        timeout=120,
        check=False,
    )

    # Then the parameter models came without the Kubernetes client (they must import neither it
    # nor the EKS family's adapter, whose module imports it)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
