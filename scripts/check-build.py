"""Check what `sam build` left in .aws-sam/build, before anything is deployed from it.

- The layer holds the dashboard's vendor files: every file index.html and the vendor CSS name.
- Every module in the layer comes with bytecode for the runtime's Python (hash-based, unchecked:
  see layers/chaosplane/Makefile), so a cold start compiles nothing.
- Each function with its layers is under Lambda's 250 MB (unzipped) limit.
- Each handler imports under the runtime's Python from the built tree alone (no site-packages),
  with the stack's environment (dummy values) and the network blocked, so init makes no AWS call.
  Its init time is printed with and without the bytecode.

Usage: scripts/check-build.py [--python python3.13] [--build-dir .aws-sam/build]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from chaosplane.local.template import Names, load_template

LIMIT_BYTES = 250 * 1024 * 1024  # function code and all its layers, unzipped
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked
STATIC = Path("python/chaosplane/ui/static")

# Runs under the runtime's Python with -I -S: only the stdlib, the function's folder (/var/task on
# Lambda) and the layer (/opt/python) are importable.
BOOTSTRAP = r"""
import json, os, socket, sys, time
task, layer = sys.argv[1], sys.argv[2]
sys.path[:0] = [task, layer]
def refuse(*args, **kwargs):
    raise ConnectionError("init opened a network connection")
socket.socket.connect = refuse
socket.getaddrinfo = refuse
started = time.perf_counter()
import app
elapsed = time.perf_counter() - started
assert callable(app.lambda_handler), "app.lambda_handler is not callable"
stdlib = os.path.dirname(os.__file__)
outside = sorted(
    name for name, module in list(sys.modules.items())
    if (path := getattr(module, "__file__", None))
    and not path.startswith((task, layer, stdlib, sys.base_prefix))
)
print(json.dumps({"init_ms": round(elapsed * 1000), "modules": len(sys.modules), "outside": outside}))
"""


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def check_assets(layer: Path) -> list[str]:
    static = layer / STATIC
    index = static / "index.html"
    if not index.is_file():
        return [f"{index} is missing"]
    html = index.read_text()
    named = {m for m in re.findall(r'(?:href|src)="([^"#:]+)"', html) if not m.startswith("/")}
    missing = sorted(n for n in named if not (static / n).is_file())
    problems = [f"index.html names {n}, which is not in the layer" for n in missing]
    for css in (static / "vendor").glob("*.css"):
        for url in re.findall(r'url\("?([^")?#]+)', css.read_text()):
            if not url.startswith("data:") and not (css.parent / url).is_file():
                problems.append(f"{css.name} names {url}, which is not in the layer")
    if not any((static / "vendor").glob("*.js")):
        problems.append("the layer has no vendor scripts (Bootstrap, Chart.js): was `make ui` run?")
    return problems


def check_bytecode(site: Path, tag: str) -> tuple[int, list[str]]:
    modules = sorted(site.rglob("*.py"))
    problems = []
    for module in modules:
        pyc = module.parent / "__pycache__" / f"{module.stem}.{tag}.pyc"
        if not pyc.is_file():
            problems.append(f"no {tag} bytecode for {module.relative_to(site)}")
            continue
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        if flags != UNCHECKED_HASH:
            problems.append(f"{pyc.relative_to(site)} is not unchecked-hash bytecode (flags {flags})")
    return len(modules), problems


def function_environment(names: Names, properties: dict[str, Any]) -> dict[str, str]:
    globals_ = names.template.get("Globals", {}).get("Function", {})
    variables = {
        **names.resolve(globals_.get("Environment", {}).get("Variables", {})),
        **names.resolve(properties.get("Environment", {}).get("Variables", {})),
    }
    return {key: str(value) for key, value in variables.items()}


def import_handler(
    python: str, task: Path, site: Path, env: dict[str, str], *, bytecode: bool
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as empty:
        # -X pycache_prefix: Python then looks for bytecode only there (empty), as with none shipped.
        flags = ["-I", "-S", "-B"] + ([] if bytecode else ["-X", f"pycache_prefix={empty}"])
        completed = subprocess.run(
            [python, *flags, "-c", BOOTSTRAP, str(task), str(site)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.strip().splitlines()[-1] if completed.stderr else "failed")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--python", default="python3.13", help="the Lambda runtime's Python")
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"))
    args = parser.parse_args()
    build: Path = args.build_dir
    template = load_template(build / "template.yaml")
    names = Names(prefix="chaosplane-check", region="us-east-1", template=template)
    problems: list[str] = []

    version = subprocess.run(
        [args.python, "-c", "import sys; print(sys.implementation.cache_tag)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    layers = {k: build / k for k in names.of_type("AWS::Serverless::LayerVersion")}
    layer_bytes = {k: tree_bytes(path) for k, path in layers.items()}
    for logical_id, path in layers.items():
        site = path / "python"
        asset_problems = check_assets(path)
        count, bytecode_problems = check_bytecode(site, version)
        problems += asset_problems + bytecode_problems[:20]
        print(f"{logical_id}: {layer_bytes[logical_id] / 2**20:.1f} MB unzipped, {count} modules")
        print(f"  dashboard assets: {'ok' if not asset_problems else 'MISSING'}")
        print(f"  {version} bytecode: {count - len(bytecode_problems)} of {count} modules")

    base = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "check-build",
        "AWS_SECRET_ACCESS_KEY": "check-build",
        "AWS_SESSION_TOKEN": "check-build",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    }
    for logical_id, resource in names.of_type("AWS::Serverless::Function").items():
        properties = resource["Properties"]
        task = build / logical_id
        total = tree_bytes(task) + sum(layer_bytes.values())
        line = f"{logical_id}: {total / 2**20:.1f} MB with its layers (limit 250)"
        if total > LIMIT_BYTES:
            problems.append(f"{logical_id} is {total / 2**20:.1f} MB unzipped with its layers, over 250 MB")
        env = {
            **base,
            **function_environment(names, properties),
            "AWS_LAMBDA_FUNCTION_NAME": names.physical_name(logical_id),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", 512)),
        }
        (site,) = [path / "python" for path in layers.values()]
        try:
            warm = import_handler(args.python, task.resolve(), site.resolve(), env, bytecode=True)
            cold = import_handler(args.python, task.resolve(), site.resolve(), env, bytecode=False)
        except RuntimeError as err:
            problems.append(f"{logical_id}: {properties['Handler']} does not import: {err}")
            print(f"{line}; import FAILED")
            continue
        if warm["outside"]:
            problems.append(f"{logical_id} imported modules from outside the built tree: {warm['outside']}")
        print(
            f"{line}; imports in {warm['init_ms']} ms with bytecode, {cold['init_ms']} ms without "
            f"({warm['modules']} modules)"
        )

    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
