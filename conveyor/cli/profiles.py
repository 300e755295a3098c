"""Where the CLI keeps each profile's gateway, credential and cached token.

One JSON file, ``$CONVEYOR_CLI_CONFIG`` or ``~/.config/conveyor/profiles.json``,
mode 0600 (it holds client secrets, as an AWS or kube config does).  The token
is renewed from the credential when less than a minute of it is left.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RENEW_MARGIN_SECONDS = 60


@dataclass
class Profile:
    url: str
    client_id: str
    client_secret: str
    access_token: str = ""
    expires_at: float = 0.0  # seconds since the epoch

    def token_is_fresh(self) -> bool:
        return bool(self.access_token) and self.expires_at - RENEW_MARGIN_SECONDS > time.time()


def config_path() -> Path:
    configured = os.environ.get("CONVEYOR_CLI_CONFIG")
    return Path(configured) if configured else Path.home() / ".config" / "conveyor" / "profiles.json"


def load_all() -> dict[str, Profile]:
    try:
        raw = json.loads(config_path().read_text())
    except FileNotFoundError:
        return {}
    return {name: Profile(**fields) for name, fields in raw.get("profiles", {}).items()}


def save(name: str, profile: Profile) -> None:
    profiles = load_all()
    profiles[name] = profile
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"profiles": {key: asdict(value) for key, value in profiles.items()}}, file, indent=2)
    os.replace(partial, path)
