"""The PromQL that Conveyor's dashboards and rules run, and the metrics it reads.

Shared by the static checks (``tests/prometheus``, ``tests/grafana``) and the
end-to-end test that holds every metric named here to a running stack.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
RULES_DIR = REPOSITORY / "prometheus" / "rules"
DASHBOARDS_DIR = REPOSITORY / "grafana" / "dashboards"

# Grafana's built-in variables, replaced by values PromQL accepts.
GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
_LABEL_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring"}


def rule_files() -> list[Path]:
    return sorted(path for path in RULES_DIR.glob("*.yml") if not path.name.endswith(".test.yml"))


def rules() -> list[dict]:
    """Every recording and alerting rule of the rule files."""
    return [
        rule
        for path in rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def recording_rules() -> dict[str, str]:
    return {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}


def dashboards() -> dict[str, dict]:
    """Dashboard file name → its JSON."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def _fill_grafana_variables(expression: str) -> str:
    for variable, value in GRAFANA_INTERVALS.items():
        expression = expression.replace(variable, value)
    return _LABEL_VARIABLE.sub(".*", expression)  # label variables only ever appear inside =~ matchers


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, expression) of every dashboard panel target, Grafana variables filled in."""
    return [
        (f"{name} / {panel['title']} / {target['refId']}", _fill_grafana_variables(target["expr"]))
        for name, dashboard in dashboards().items()
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def rule_expressions() -> list[tuple[str, str]]:
    return [(rule.get("record") or rule["alert"], rule["expr"]) for rule in rules()]


def metric_names(expression: str) -> set[str]:
    """The metric (or recorded series) names ``expression`` selects."""
    bare = _STRING.sub('""', expression)
    bare = _MATCHERS.sub("", bare)
    bare = _RANGES.sub("", bare)
    bare = _GROUPING.sub("", bare)
    return {
        match.group(1)
        for match in _NAME.finditer(bare)
        if match.group(2) is None and match.group(1) not in _KEYWORDS
    }


def raw_metric_names(expression: str, recorded: dict[str, str] | None = None) -> set[str]:
    """The exported metrics ``expression`` needs, reading through recording rules.

    A name with a colon that no recording rule defines raises ``KeyError``."""
    recorded = recording_rules() if recorded is None else recorded
    names: set[str] = set()
    for name in metric_names(expression):
        if ":" in name:
            names |= raw_metric_names(recorded[name], recorded)
        else:
            names.add(name)
    return names


def dashboard_and_rule_metrics() -> set[str]:
    """Every exported metric a dashboard panel or a rule reads."""
    recorded = recording_rules()
    return {
        name
        for _, expression in [*dashboard_expressions(), *rule_expressions()]
        for name in raw_metric_names(expression, recorded)
    }
