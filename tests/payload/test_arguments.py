"""The builders refuse what the scripts should never see, and pass parameters only as arguments."""

from __future__ import annotations

from typing import Any

import pytest

from chaosplane.faults.payloads import (
    PAYLOAD_MARKER,
    SHELL,
    netem_command,
    stop_command,
    stress_cpu_command,
    stress_memory_command,
)

NETEM: dict[str, Any] = {"interface": "eth0", "duration_s": 60, "delay_ms": 100}


def test_parameters_are_arguments_after_a_fixed_script() -> None:
    command = netem_command(interface="eth0", duration_s=60, delay_ms=100, jitter_ms=10, loss_percent=2.5)
    script = command[2]

    assert command[:2] == [SHELL, "-c"]
    assert command[3] == PAYLOAD_MARKER + "netem"
    assert command[4:] == ["eth0", "60", "100", "10", "2.5"]
    assert script == netem_command(interface="lo", duration_s=1, loss_percent=50)[2]


def test_stress_commands_carry_stress_ng_options_with_a_timeout() -> None:
    assert stress_cpu_command(workers=2, load_percent=75, duration_s=30)[4:] == [
        "--cpu", "2", "--cpu-load", "75", "--timeout", "30s",
    ]  # fmt: skip
    assert stress_memory_command(workers=1, size="256M", duration_s=30)[4:] == [
        "--vm", "1", "--vm-bytes", "256M", "--vm-keep", "--timeout", "30s",
    ]  # fmt: skip
    assert stop_command()[:2] == [SHELL, "-c"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"delay_ms": -1},
        {"jitter_ms": -5},
        {"delay_ms": 10, "jitter_ms": 20},
        {"loss_percent": 100.5},
        {"loss_percent": -1},
        {"loss_percent": float("nan")},
        {"delay_ms": 0, "loss_percent": 0},
        {"duration_s": 0},
        {"duration_s": 43_201},
        {"duration_s": True},
        {"duration_s": 1.5},
        {"delay_ms": "100"},
        {"delay_ms": 60_001},
    ],
)
def test_netem_rejects_bad_numbers(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        netem_command(**{**NETEM, **overrides})


@pytest.mark.parametrize(
    "interface",
    ["eth0; rm -rf /", "", "a" * 16, "eth 0", "eth0\n", ".", "..", "a/b", "eth0:1", "tab\there", "é0", None],
)
def test_netem_rejects_what_linux_would_not_call_an_interface(interface: Any) -> None:
    with pytest.raises(ValueError):
        netem_command(**{**NETEM, "interface": interface})


@pytest.mark.parametrize("interface", ["eth0", "a" * 15, "veth1a2b", "v;id>pwn", "-x"])
def test_netem_accepts_any_name_linux_accepts(interface: str) -> None:
    assert netem_command(**{**NETEM, "interface": interface})[4] == interface


@pytest.mark.parametrize(
    "overrides",
    [{"workers": 0}, {"workers": 257}, {"load_percent": 0}, {"load_percent": 101}, {"duration_s": -1}],
)
def test_cpu_stress_rejects_bad_numbers(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        stress_cpu_command(**{"workers": 1, "load_percent": 50, "duration_s": 10, **overrides})


@pytest.mark.parametrize("size", ["256M", "1G", "64m", "4096", "512K", "50%", "100%", "1%"])
def test_memory_stress_accepts_sizes(size: str) -> None:
    assert "--vm-bytes" in stress_memory_command(workers=1, size=size, duration_s=10)


@pytest.mark.parametrize(
    "size",
    ["", "M", "-1M", "1.5G", "1T", "0%", "101%", "0M", "1K", "256 M", "256MB", "50 %", "$(id)", "1G;id"],
)
def test_memory_stress_rejects_bad_sizes(size: str) -> None:
    with pytest.raises(ValueError):
        stress_memory_command(workers=1, size=size, duration_s=10)
