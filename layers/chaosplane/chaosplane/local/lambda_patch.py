"""The one patch of moto internals: run Lambda functions in this process instead of in Docker.

moto invokes a function by running its code in a Docker container; there is no Docker engine here.
We replace `LambdaFunction._invoke_lambda(self, event) -> (payload, errored, logs)` with a call of
the real handler, loaded from the function's CodeUri. Errors come back the way Lambda reports them
({"errorType": <exception class name>, ...}), so Step Functions' Retry and Catch match on the name.

`tests/integration/test_moto_canary.py` fails loudly if a moto upgrade changes what we patch.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda.models import LambdaFunction

PATCHED_ATTRIBUTE = "_invoke_lambda"
_code_dirs: dict[str, Path] = {}
# Idle execution environments, per function. As on Lambda, one environment handles one event at a
# time; concurrent invocations get environments of their own (a cold start each), since handlers
# keep per-event state in module-level objects (Powertools' resolver does) and are not thread-safe.
_idle: dict[str, list[ModuleType]] = {}
_generation = 0  # bumped by reset_loaded_handlers: environments from before it are not reused
_load_lock = threading.Lock()


@dataclass
class LocalContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def register_code(function_name: str, code_dir: Path) -> None:
    """Tell the patch where a function's code lives (its CodeUri in template.yaml)."""
    _code_dirs[function_name] = code_dir


def _checkout(function_name: str, handler: str) -> tuple[ModuleType, int]:
    """An idle environment of the function, or a new one (a cold start); with its generation."""
    module_name = handler.rpartition(".")[0]
    with _load_lock:  # cold starts one at a time: creating boto3 clients is not thread-safe
        idle = _idle.setdefault(function_name, [])
        if idle:
            return idle.pop(), _generation
        if function_name not in _code_dirs:
            raise RuntimeError(f"no code registered for function {function_name}")
        path = _code_dirs[function_name] / f"{module_name.replace('.', '/')}.py"
        # Every function's module is called `app`: load each under a name of its own.
        spec = importlib.util.spec_from_file_location(f"chaosplane_fn_{function_name}", path)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module, _generation


def _checkin(function_name: str, module: ModuleType, generation: int) -> None:
    with _load_lock:
        if generation == _generation:
            _idle.setdefault(function_name, []).append(module)


def invoke_in_process(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
    context = LocalContext(
        function_name=self.function_name,
        memory_limit_in_mb=int(self.memory_size),
        invoked_function_arn=self.function_arn,
    )
    attribute = str(self.handler).rpartition(".")[2]
    try:
        module, generation = _checkout(self.function_name, str(self.handler))
        try:
            result = getattr(module, attribute)(payload, context)
        finally:
            _checkin(self.function_name, module, generation)
        return json.dumps(result, default=str), False, ""
    except Exception as err:  # reported to the caller exactly as Lambda would
        error = {
            "errorMessage": str(err),
            "errorType": type(err).__name__,
            "stackTrace": traceback.format_exception(err),
        }
        return json.dumps(error), True, "".join(error["stackTrace"])


def apply() -> None:
    if not callable(getattr(LambdaFunction, PATCHED_ATTRIBUTE, None)):
        raise RuntimeError(
            f"moto.awslambda.models.LambdaFunction.{PATCHED_ATTRIBUTE} is gone: this moto version "
            "is not supported by chaosplane's local runtime (see requirements-dev.txt for the pin)"
        )
    setattr(LambdaFunction, PATCHED_ATTRIBUTE, invoke_in_process)


def reset_loaded_handlers() -> None:
    """Forget loaded handler modules, so the next invocation re-reads settings (used by tests)."""
    global _generation
    with _load_lock:
        _idle.clear()
        _generation += 1


def environments(function_name: str) -> list[ModuleType]:
    """The function's idle execution environments (its loaded handler modules), for tests to read."""
    with _load_lock:
        return list(_idle.get(function_name, []))
