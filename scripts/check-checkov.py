"""Run checkov on template.yaml and fail on any finding that tools/checkov-skips.yaml gives no reason for.

Also fails on an entry that no longer matches a finding, so the skips cannot outlive their cause.
checkov runs offline (--skip-download). Prints every remaining finding with its reason.

Usage: scripts/check-checkov.py [--checkov .venv-tools/checkov/bin/checkov]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--checkov", default=str(ROOT / ".venv-tools/checkov/bin/checkov"))
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--skips", type=Path, default=ROOT / "tools/checkov-skips.yaml")
    args = parser.parse_args()
    command = [args.checkov, "-f", str(args.template), "--framework", "cloudformation"]
    command += ["-o", "json", "--quiet", "--compact", "--skip-download"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        print(completed.stdout + completed.stderr, file=sys.stderr)
        return 2
    reports = report if isinstance(report, list) else [report]
    if any(r.get("summary", {}).get("parsing_errors") for r in reports):
        print("checkov could not parse the template", file=sys.stderr)
        return 2
    failed = [f for r in reports for f in r.get("results", {}).get("failed_checks", [])]
    skips = yaml.safe_load(args.skips.read_text()) or []
    used = [False] * len(skips)
    problems = []
    for finding in failed:
        check, resource = finding["check_id"], finding["resource"]
        matches = [
            i
            for i, skip in enumerate(skips)
            if skip["check"] == check and any(fnmatch.fnmatchcase(resource, g) for g in skip["resources"])
        ]
        if not matches or not str(skips[matches[0]].get("reason", "")).strip():
            name = finding["check_name"]
            problems.append(f"{check} on {resource} ({name}) has no reason in {args.skips.name}")
            continue
        used[matches[0]] = True
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    print(f"checkov: {passed} passed, {len(failed)} findings, each with its reason:")
    for i, skip in enumerate(skips):
        if not used[i]:
            problems.append(f"{skip['check']} on {skip['resources']}: no such finding now; remove the entry")
            continue
        hits = sorted({f["resource"] for f in failed if f["check_id"] == skip["check"]})
        print(f"  {skip['check']} ({len(hits)}: {', '.join(h.split('.', 1)[1] for h in hits)})")
        print(f"    {' '.join(str(skip['reason']).split())}")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
