from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.settings import Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.max_priority == 10
    assert settings.jwt_secret == ""


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CONVEYOR_MAX_READY_MESSAGES", "lots", "CONVEYOR_MAX_READY_MESSAGES: invalid literal"),
        ("CONVEYOR_RATE_LIMIT_STORAGE", "mongodb://x", "CONVEYOR_RATE_LIMIT_STORAGE: must be memory"),
        ("CONVEYOR_TRUSTED_PROXIES", "10.0.0.0/8,nope", "CONVEYOR_TRUSTED_PROXIES: .nope. does not appear"),
        ("CONVEYOR_WORKER_THREADS", "0", "CONVEYOR_WORKER_THREADS: must be a positive integer"),
        ("CONVEYOR_MAX_PRIORITY", "300", "CONVEYOR_MAX_PRIORITY: must be between 1 and 255"),
        ("CONVEYOR_DATABASE_URL", "mysql://x", "CONVEYOR_DATABASE_URL: must be a sqlite"),
        ("CONVEYOR_BROKER_URL", "redis://x", "CONVEYOR_BROKER_URL: must be an amqp"),
        ("CONVEYOR_CHUNK_OVERLAP", "5000", "CONVEYOR_CHUNK_OVERLAP: must be smaller than CONVEYOR_CHUNK_SIZE"),
        ("CONVEYOR_DATABSE_URL", "sqlite:///x.db", "CONVEYOR_DATABSE_URL: unknown setting"),
    ],
)
def test_bad_variables_are_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({variable: value})


def test_a_short_secret_is_rejected_without_echoing_it() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"CONVEYOR_JWT_SECRET": "hunter2"})
    assert "CONVEYOR_JWT_SECRET" in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_the_gateway_requires_a_secret() -> None:
    with pytest.raises(SettingsError, match="CONVEYOR_JWT_SECRET: required"):
        Settings.from_env({}).require_jwt_secret()


def test_readme_documents_every_setting() -> None:
    readme = README.read_text()
    missing = [name for name, _, _ in Settings.documentation() if f"`{name}`" not in readme]
    assert missing == []


def test_the_command_line_s_own_variables_are_not_service_settings() -> None:
    Settings.from_env({"CONVEYOR_CLI_CONFIG": "/tmp/profiles.json", "CONVEYOR_CLI_PROFILE": "ops"})
