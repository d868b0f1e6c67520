"""The data model, the catalogue, the client and the CLI validate without the SDKs; a fault is one object.

The CLI and the client validate experiments through `chaosplane.models`, which asks the catalogue
for each fault's parameters: neither may pull in boto3 or the Kubernetes client. Checked in a fresh
interpreter, since this test process has long imported both.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chaosplane.faults import catalogue
from chaosplane.faults.parameters import Ec2StopParameters
from chaosplane.models import FaultType

SDKS = ("boto3", "botocore", "kubernetes")
CHILD = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
from chaosplane.models import ExperimentSpec
ExperimentSpec.model_validate({
    "name": "e", "type": "pod-network-latency", "target": "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9",
    "parameters": {"delay_ms": 100}, "duration": 60,
})
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[2:]))))
"""


@pytest.mark.parametrize(
    "module",
    [
        "chaosplane.models",
        "chaosplane.faults.catalogue",
        "chaosplane.fis",
        "chaosplane.client",
        "chaosplane.cli",
    ],
)
def test_the_model_the_catalogue_the_client_and_the_cli_validate_without_the_sdks(module: str) -> None:
    # Given a fresh interpreter, when it imports the module and validates an experiment with it
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, module, *SDKS], capture_output=True, text=True, timeout=60, check=False
    )

    # Then none of the SDKs was loaded
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def test_every_fault_is_registered_once_under_its_own_name() -> None:
    assert set(catalogue.FAULTS) == set(FaultType)
    assert all(fault.name is name for name, fault in catalogue.FAULTS.items())
    assert all(fault.summary and fault.parameters for fault in catalogue.FAULTS.values())


def test_a_fault_is_done_and_undone_through_the_family_it_is_handed() -> None:
    # Given a stand-in EC2 family that records what the fault asks of it
    class Family:
        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def stop(self, resource: object, force: bool, journal: object) -> str:
            self.calls.append(("stop", resource, force))
            return "stopping"

        def start_again(self, entry: object) -> str:
            self.calls.append(("start_again", entry))
            return "pending"

    family, fault = Family(), catalogue.spec(FaultType.EC2_STOP)

    # When the registered ec2-stop injects and rolls back
    injected = fault.inject(family, "i-1", Ec2StopParameters(force=True), None)  # type: ignore[arg-type]
    restored = fault.rollback(family, "entry")  # type: ignore[arg-type]

    # Then it called the family's own change and its undo, with the parameters it was given
    assert (injected, restored) == ("stopping", "pending")
    assert family.calls == [("stop", "i-1", True), ("start_again", "entry")]
