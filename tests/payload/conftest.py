"""Real processes, real kernel: network namespaces, tc and stress-ng, as root.

Every test gets its own pair of network namespaces joined by a veth pair (10.77.0.1 and 10.77.0.2,
which exist only inside those namespaces), removed after the test whatever happens. Payloads run as
subprocesses with a per-test pid file, each in a session of its own: the processes they start (and
any they leave behind, re-parented or not) are found in /proc by session and killed at teardown.
(An environment mark would not do: stress-ng's workers overwrite their environment block when they
rename themselves "stress-ng-cpu", "stress-ng-vm".)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from chaosplane.faults.payloads import PIDFILE_ENV, SHELL
from tests.payload import uml

REQUIRE_NETEM_ENV = "CHAOSPLANE_REQUIRE_NETEM"
ADDRESS = "10.77.0.1"
PEER_ADDRESS = "10.77.0.2"
TOOLS = ("ip", "tc", "ping", "stress-ng", "dash")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, interval: float = 0.02) -> T:
    """Poll `check` until it returns something truthy; fail with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    assert last, f"condition not met within {timeout}s; last value: {last!r}"
    return last


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "netem: needs the kernel's netem; run in a User-mode Linux guest without it"
    )


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected: only what runs goes to the guest
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a kernel without netem, the `netem` tests run in a User-mode Linux guest (`uml.py`)."""
    if os.environ.get(uml.GUEST_ENV) or not any(item.get_closest_marker("netem") for item in items):
        return
    if os.geteuid() != 0 or shutil.which("tc") is None or uml.kernel() is None or probe_netem():
        return  # run here: the `root` fixture or `real_netem` says what is missing
    uml.delegate(config, items, "netem")


@pytest.fixture(scope="session")
def root() -> None:
    """These tests change the kernel's network state and read other processes' /proc: they need root."""
    if os.geteuid() != 0:
        pytest.fail(
            "tests/payload needs root (network namespaces, tc qdiscs, /proc of other processes); "
            "run it as root, e.g. `sudo .venv/bin/python -m pytest tests/payload`",
            pytrace=False,
        )
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/system-deps.sh", pytrace=False)


def probe_netem() -> bool:
    """Whether this kernel can add a netem qdisc at all (some CI and VM kernels are built without it)."""
    probe = f"cpprobe{uuid.uuid4().hex[:8]}"
    run("ip", "netns", "add", probe)
    try:
        run("ip", "-n", probe, "link", "set", "lo", "up")
        added = run(
            "ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem", check=False
        )
        return added.returncode == 0
    finally:
        run("ip", "netns", "del", probe, check=False)


@pytest.fixture(scope="session")
def kernel_has_netem(root: None) -> bool:
    return probe_netem()


@pytest.fixture
def real_netem(kernel_has_netem: bool) -> None:
    """Latency and loss can only be measured with the kernel's netem: say so loudly when it is missing."""
    if kernel_has_netem:
        return
    message = (
        "this kernel has no sch_netem (CONFIG_NET_SCH_NETEM): NOT tested here; "
        f"set {REQUIRE_NETEM_ENV}=1 where the kernel has netem to make this a failure"
    )
    if os.environ.get(REQUIRE_NETEM_ENV):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def tc_path(kernel_has_netem: bool, tmp_path: Path) -> str:
    """PATH for netem payloads: the real tc, or on a kernel without netem a stand-in `tc` that asks the
    kernel for a `tbf` where the payload asks for `netem`: so the qdisc's life (added with our handle,
    removed at the deadline, on signals, on stop; foreign qdiscs refused) is still real kernel state."""
    path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    if kernel_has_netem:
        return path
    real_tc = shutil.which("tc")
    standin = tmp_path / "standin-bin" / "tc"
    standin.parent.mkdir()
    standin.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "args = sys.argv[1:]\n"
        'if args[:2] == ["qdisc", "add"] and "netem" in args:\n'
        '    args = args[: args.index("netem")] + "tbf rate 1gbit burst 64kb latency 50ms".split()\n'
        f"os.execv({real_tc!r}, ['tc', *args])\n"
    )
    standin.chmod(0o755)
    return f"{standin.parent}:{path}"


@pytest.fixture
def netem_kind(kernel_has_netem: bool) -> str:
    """The kind of qdisc the payload's `netem` shows up as (see `tc_path`)."""
    return "netem" if kernel_has_netem else "tbf"


@pytest.fixture(params=["dash", "busybox"])
def shell(request: pytest.FixtureRequest) -> list[str]:
    """The image's /bin/sh is dash; the payloads must work in busybox sh too."""
    if request.param == "busybox":
        if shutil.which("busybox") is None:
            pytest.skip("busybox is not installed: payload NOT run with busybox sh (apt-get install busybox)")
        return ["busybox", "sh"]
    return ["dash"]


def in_shell(command: list[str], shell: list[str]) -> list[str]:
    assert command[0] == SHELL, command
    return [*shell, *command[1:]]


@dataclass(frozen=True)
class Qdisc:
    kind: str
    handle: str
    line: str


@dataclass(frozen=True)
class Ping:
    sent: int
    received: int
    times_ms: list[float]

    @property
    def loss_percent(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent


@dataclass
class NetnsPair:
    """Two namespaces: `name` (where payloads run, device `dev`) and `peer` (device `peer_dev`)."""

    name: str
    peer: str
    dev: str
    peer_dev: str

    def exec(self, command: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *command]

    def tc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("tc", "-n", self.name, *args, check=check)  # not `ip netns exec`: one process less

    def root_qdisc(self) -> Qdisc:
        line = self.tc("qdisc", "show", "dev", self.dev, "root").stdout.strip()
        words = line.split()
        return Qdisc(kind=words[1], handle=words[2], line=line)

    def qdisc_details(self) -> str:
        """Everything tc says about the device's qdiscs, to compare before and after: the kind, handle
        and options, not htb's count of packets sent past its classes (the link's own traffic)."""
        details = self.tc("-d", "qdisc", "show", "dev", self.dev).stdout
        return re.sub(r"direct_packets_stat \d+", "direct_packets_stat N", details)

    def ping(self, count: int, interval: float) -> Ping:
        command = ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "1", PEER_ADDRESS]
        out = run(*self.exec(command), check=False).stdout
        summary = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert summary, out
        times = [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]
        return Ping(int(summary[1]), int(summary[2]), times)


def ip_batch(lines: list[str], netns: str | None = None, check: bool = True) -> None:
    """`ip` commands in one process (names here are ours: no spaces, nothing to quote)."""
    where = ["-n", netns] if netns else []
    force = [] if check else ["-force"]
    result = subprocess.run(
        ["ip", *where, *force, "-batch", "-"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"ip -batch {lines} failed ({result.returncode}): {result.stderr.strip()}")


@pytest.fixture
def netns(root: None) -> Iterator[NetnsPair]:
    token = uuid.uuid4().hex[:8]
    pair = NetnsPair(name=f"cp-{token}-a", peer=f"cp-{token}-b", dev=f"cpa{token}", peer_dev=f"cpb{token}")
    # In three `ip -batch` calls, not ten calls: a process costs 70 ms in the User-mode Linux guest.
    try:
        ip_batch([f"netns add {pair.name}", f"netns add {pair.peer}"])
        # Created inside our namespaces: the host's own interfaces and addresses are never touched.
        ip_batch(
            [
                f"link add {pair.dev} type veth peer name {pair.peer_dev} netns {pair.peer}",
                f"addr add {ADDRESS}/30 dev {pair.dev}",
                "link set lo up",
                f"link set {pair.dev} up",
            ],
            netns=pair.name,
        )
        ip_batch(
            [
                f"addr add {PEER_ADDRESS}/30 dev {pair.peer_dev}",
                "link set lo up",
                f"link set {pair.peer_dev} up",
            ],
            netns=pair.peer,
        )
        yield pair
    finally:
        ip_batch([f"netns del {pair.name}", f"netns del {pair.peer}"], check=False)


@dataclass(frozen=True)
class Proc:
    pid: int
    comm: str
    cpu_ticks: int
    rss_kib: int


def session_processes(sessions: set[int]) -> list[Proc]:
    """Live (not zombie) processes in these sessions."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3 of proc(5): the state
            if int(fields[3]) not in sessions or fields[0] == "Z":
                continue
            status = Path(f"/proc/{entry}/status").read_text()
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        found.append(Proc(int(entry), comm, int(fields[11]) + int(fields[12]), int(rss[1]) if rss else 0))
    return found


@dataclass
class Running:
    process: subprocess.Popen[str]
    started: float

    def finish(self, timeout: float) -> tuple[int, str, float]:
        """Wait for the payload to exit by itself: (exit code, its stderr, seconds since it started)."""
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"payload, or a process it started, still running {timeout}s later"
            ) from None
        return self.process.returncode, err, time.monotonic() - self.started


def _default_signals() -> None:
    """A payload starts as in a container: SIGINT and SIGQUIT at their defaults. A test run started
    in the background by a non-interactive shell inherits them ignored, and a POSIX shell can never
    trap a signal that was ignored when it started, so the payload's own trap would be untested."""
    for number in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(number, signal.SIG_DFL)


@dataclass
class Payloads:
    """Starts payloads with this test's pid file, each in its own session; kills what is left at teardown."""

    pidfile: Path
    path: str
    cwd: Path
    running: list[Running] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, PIDFILE_ENV: str(self.pidfile), "PATH": self.path}

    def start(self, command: list[str]) -> Running:
        process = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
        running = Running(process, time.monotonic())
        self.running.append(running)
        return running

    def run(
        self, command: list[str], timeout: float = 15, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, env=env or self.env, cwd=self.cwd, capture_output=True, text=True, timeout=timeout
        )

    def processes(self) -> list[Proc]:
        """Every live process the payloads started, the payloads included."""
        return session_processes({running.process.pid for running in self.running})

    def cleanup(self) -> None:
        # Everything in the payloads' sessions, payloads or what they left behind (which may hold
        # their output pipes open), then the payloads themselves.
        for proc in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        for running in self.running:
            if running.process.poll() is None:
                running.process.kill()
            running.process.communicate()


@pytest.fixture
def payloads(root: None, tmp_path: Path, tc_path: str) -> Iterator[Payloads]:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    found = Payloads(pidfile=tmp_path / "payload.pid", path=tc_path, cwd=workdir)
    try:
        yield found
    finally:
        found.cleanup()
