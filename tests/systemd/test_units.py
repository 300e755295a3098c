"""Every unit in ``systemd/`` passes ``systemd-analyze verify`` (template
units through instance symlinks), keeps the hardening the deploy guide
promises, and the worker's stop drains instead of killing."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.settings import Settings

REPOSITORY = Path(__file__).resolve().parents[2]
UNIT_DIR = REPOSITORY / "systemd"
INSTANCES = {"gateway@.service": "gateway@8001.service", "worker@.service": "worker@0.service"}
SERVICES = ["gateway@8001.service", "worker@0.service", "scheduler.service", "watcher.service", "autoscaler.service"]
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "User": "conveyor",
    "StateDirectory": "conveyor",
    "LogsDirectory": "conveyor",
    "Restart": "on-failure",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}


def installed_copy(destination: Path, extra: str = "") -> Path:
    """The units as installed, but running this checkout's Python (verify
    requires the executables to exist), with instance symlinks."""
    for unit in sorted(UNIT_DIR.glob("*.service")) + sorted(UNIT_DIR.glob("*.target")):
        text = unit.read_text().replace("/opt/conveyor/.venv/bin/python", sys.executable)
        (destination / unit.name).write_text(text.replace("/opt/conveyor", str(REPOSITORY)) + extra)
    for template, instance in INSTANCES.items():
        (destination / instance).symlink_to(template)
    return destination


def verify(directory: Path) -> subprocess.CompletedProcess:
    units = [str(directory / name) for name in [*SERVICES, "conveyor.target"]]
    return subprocess.run(
        ["systemd-analyze", "verify", "--recursive-errors=yes", "--man=no", *units],
        capture_output=True, text=True, check=False,
    )


def service_section(name: str) -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(UNIT_DIR / name)
    return dict(parser["Service"])


def test_every_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    completed = verify(installed_copy(tmp_path))
    assert completed.returncode == 0, completed.stderr


def test_verify_fails_on_a_misspelt_key(tmp_path: Path) -> None:
    completed = verify(installed_copy(tmp_path, extra="KillMood=mixed\n"))
    assert completed.returncode != 0
    assert "KillMood" in completed.stderr


@pytest.mark.parametrize("unit", ["gateway@.service", "worker@.service", "scheduler.service", "watcher.service", "autoscaler.service"])
def test_every_service_is_hardened_and_part_of_the_target(unit: str) -> None:
    service = service_section(unit)
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{unit}: {key}"
    assert "PartOf=conveyor.target" in (UNIT_DIR / unit).read_text()


def test_stopping_a_worker_drains_it() -> None:
    service = service_section("worker@.service")
    assert service["KillMode"] == "mixed"
    hard_limit_seconds = 10 * 60  # actors.registry: time_limit, and Dramatiq's worker shutdown timeout
    assert int(service["TimeoutStopSec"]) > hard_limit_seconds
    assert service["ExecStart"].endswith("-m conveyor.worker_instance %i")


@pytest.mark.parametrize("unit", SERVICES)
def test_offline_security_exposure_stays_low(tmp_path: Path, unit: str) -> None:
    completed = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(installed_copy(tmp_path) / unit)],
        capture_output=True, text=True, check=False,
    )
    exposure = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", completed.stdout)
    assert exposure, completed.stdout + completed.stderr
    assert float(exposure.group(1)) <= 2.0, f"{unit}: exposure {exposure.group(1)} (README reports 1.4)"


def test_the_example_environment_holds_only_known_settings() -> None:
    example = UNIT_DIR / "conveyor.env.example"
    names = [line.split("=", 1)[0] for line in example.read_text().splitlines() if line and not line.startswith("#")]
    known = {name for name, _, _ in Settings.documentation()}
    assert set(names) <= known, set(names) - known
