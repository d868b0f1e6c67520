"""The OpenAPI document tells the truth: schemathesis, every check, against `chaosplane local`.

`st run --checks all` generates requests from /openapi.json (valid ones, and ones the schema
forbids), sends them to a platform of this test's own over loopback, as an admin of its team,
and checks every answer: no 5xx, only declared statuses, headers and bodies as documented, what
the schema allows accepted and what it forbids refused, 405 with Allow for other methods, a
deleted resource gone. The few rules no schema can state are in schemathesis.toml beside this
file, each said why.

Bounded to run in a minute or two on a busy machine: ten examples an operation, one worker, a
fixed seed and no example database, so a run repeats the last one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_local_runtime import Local, shut_down, start_local

pytestmark = pytest.mark.e2e
ST = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261202
MAX_EXAMPLES = 10


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    # The throttle is the gateway's, not the API's contract: lifted, so every case reaches the API.
    running = start_local(
        tmp_path_factory.mktemp("conformance"),
        "--parameter",
        "ApiThrottleRateLimit=100000",
        "--parameter",
        "ApiThrottleBurstLimit=100000",
    )
    yield running
    shut_down(running)


@pytest.mark.timeout(900)
def test_every_operation_answers_as_the_openapi_document_says(local: Local, tmp_path: Path) -> None:
    # Given the platform's own document, and the admin token `chaosplane local` printed
    token = str(local.http.headers["Authorization"]).split()[1]
    command = [
        str(ST),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{local.url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
    ]
    # loopback only: no proxy between schemathesis and the platform
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}

    # When schemathesis runs every phase against it
    started = time.monotonic()
    completed = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=840, check=False
    )
    took = time.monotonic() - started

    # Then no case failed any check (the output names each failure, with a curl to reproduce it)
    output = completed.stdout + completed.stderr
    cases = re.search(r"(\d+) generated, (.*)", output)
    summary = f"{cases[0] if cases else 'no cases'} in {took:.0f}s"
    print(f"schemathesis: {summary}")  # the figures, in the log of a passing run (-s or -rA)
    assert completed.returncode == 0, f"schemathesis found failures ({summary}):\n{output[-20000:]}"
    assert cases is not None and int(cases[1]) > 0 and "passed" in cases[2], output[-5000:]
