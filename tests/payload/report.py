"""A pytest plugin for the User-mode Linux guest (`uml.py`): run only the tests the host selected, and
write each one's verdict (outcome, report, captured output, duration) as JSON for the host to read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

SELECT_ENV = "CHAOSPLANE_UML_SELECT"
REPORT_ENV = "CHAOSPLANE_UML_REPORT"

_verdicts: dict[str, dict[str, Any]] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(json.loads(Path(os.environ[SELECT_ENV]).read_text()))
    kept = [item for item in items if item.nodeid in wanted]
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in wanted])
    items[:] = kept


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    verdict = _verdicts.setdefault(
        report.nodeid, {"outcome": "passed", "text": "", "sections": [], "duration": 0.0}
    )
    verdict["duration"] += report.duration
    if report.when == "call" or report.outcome != "passed":
        verdict["sections"] = [[title, text] for title, text in report.sections]
    if report.outcome == "skipped" and verdict["outcome"] == "passed":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        verdict.update(outcome="skipped", text=reason)
    elif report.outcome == "failed":
        text = f"(in the guest's {report.when})\n{report.longreprtext}"
        if verdict["outcome"] == "failed":
            text = verdict["text"] + "\n\n" + text
        verdict.update(outcome="failed", text=text)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = Path(os.environ[REPORT_ENV])
    path.write_text(json.dumps(_verdicts))
