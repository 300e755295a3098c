"""The repository's Prometheus configuration and rules, checked by promtool:
the config and every rule file are valid, every rule test passes, every alert
has a case where it fires and one where it stays silent, and a runbook entry."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from promql_names import REPOSITORY, RULES_DIR, rule_files, rules

from conveyor.prometheus_server import PROMETHEUS_DIR, prepare_configuration, scrape_jobs

JOBS = {"conveyor-gateway", "conveyor-worker", "rabbitmq", "rabbitmq-detailed", "conveyor-autoscaler", "node", "prometheus"}


def promtool(*arguments: str, cwd: Path = RULES_DIR) -> None:
    run = subprocess.run(["promtool", *arguments], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"promtool {' '.join(arguments)}:\n{run.stdout}\n{run.stderr}"


def test_the_configuration_is_valid() -> None:
    promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"), cwd=PROMETHEUS_DIR)


@pytest.mark.parametrize("rule_file", rule_files(), ids=lambda path: path.name)
def test_each_rule_file_is_valid(rule_file: Path) -> None:
    promtool("check", "rules", rule_file.name)


def test_files_and_tests_pair_up() -> None:
    for rule_file in rule_files():
        test_file = rule_file.with_suffix(".test.yml")
        assert test_file.exists(), f"{rule_file.name} has no {test_file.name}"
        assert rule_file.name in yaml.safe_load(test_file.read_text())["rule_files"]
    loaded = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["rule_files"]
    assert sorted(loaded) == [f"rules/{path.name}" for path in rule_files()], "prometheus.yml loads every rule file"


@pytest.mark.parametrize("test_file", sorted(RULES_DIR.glob("*.test.yml")), ids=lambda path: path.name)
def test_rule_unit_tests_pass(test_file: Path) -> None:
    promtool("test", "rules", test_file.name)


def _alert_cases() -> dict[str, list[bool]]:
    """Alert name → for each of its test cases, whether it expects the alert to fire."""
    cases: dict[str, list[bool]] = {}
    for test_file in RULES_DIR.glob("*.test.yml"):
        for test in yaml.safe_load(test_file.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], []).append(bool(case.get("exp_alerts")))
    return cases


@pytest.mark.parametrize("alert", [rule["alert"] for rule in rules() if "alert" in rule])
def test_every_alert_is_tested_firing_and_silent(alert: str) -> None:
    outcomes = _alert_cases().get(alert, [])
    assert True in outcomes, f"no test case where {alert} fires"
    assert False in outcomes, f"no test case where {alert} stays silent"


@pytest.mark.parametrize("rule", [rule for rule in rules() if "alert" in rule], ids=lambda rule: rule["alert"])
def test_every_alert_links_its_runbook_entry(rule: dict) -> None:
    anchor = rule["alert"].lower()
    assert rule["annotations"]["runbook_url"] == f"README.md#{anchor}"
    assert rule["labels"]["severity"] in {"warning", "critical"}
    headings = re.findall(r"^#### (\w+)$", (REPOSITORY / "README.md").read_text(), flags=re.MULTILINE)
    assert rule["alert"] in headings, f"the README has no '#### {rule['alert']}' runbook entry"


def test_scrape_jobs_read_their_targets_from_files() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert set(scrape_jobs()) == JOBS
    for job in config["scrape_configs"]:
        (discovery,) = job["file_sd_configs"]
        assert discovery["files"] == [f"targets/{job['job_name']}.json"]
        groups = json.loads((PROMETHEUS_DIR / discovery["files"][0]).read_text())
        assert groups and all(group["targets"] for group in groups), f"no default target for {job['job_name']}"


def test_a_prepared_copy_scrapes_the_given_targets_and_is_valid(tmp_path: Path) -> None:
    config = prepare_configuration(
        tmp_path / "prometheus", {"conveyor-gateway": ["127.0.0.1:18001", "127.0.0.1:18002"]}, scrape_interval="2s"
    )
    loaded = yaml.safe_load(config.read_text())
    assert loaded["global"]["scrape_interval"] == loaded["global"]["evaluation_interval"] == "2s"
    targets = tmp_path / "prometheus" / "targets"
    assert json.loads((targets / "conveyor-gateway.json").read_text()) == [
        {"targets": ["127.0.0.1:18001", "127.0.0.1:18002"]}
    ]
    assert json.loads((targets / "conveyor-worker.json").read_text()) == []  # not asked for: nothing scraped
    promtool("check", "config", str(config), cwd=config.parent)
    with pytest.raises(ValueError, match="no scrape job named conveyor-gatway"):
        prepare_configuration(tmp_path / "other", {"conveyor-gatway": ["127.0.0.1:1"]})
