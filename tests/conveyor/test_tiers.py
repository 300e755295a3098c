from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.settings import Settings
from conveyor.tiers import DEFAULT_TIERS_FILE, TierError, Tiers
from gateway.app import create_app

VALID_TIER = """
priority = 1
upload_rate = "3/minute"
read_rate = "30/minute"
max_files_per_batch = 3
max_file_bytes = 1000
max_pending_jobs = 20
retention_days = 1
"""
UNAUTHENTICATED = '[unauthenticated]\nauth_rate = "20/minute"\nprobe_rate = "600/minute"\n'


def test_shipped_tiers_rank_by_priority_and_grow_their_limits() -> None:
    tiers = Tiers.load(DEFAULT_TIERS_FILE, max_priority=10)
    assert tiers.names == ["free", "standard", "premium", "enterprise"]
    ranked = [tiers[name] for name in tiers.names]
    for smaller, larger in zip(ranked, ranked[1:]):
        assert smaller.priority < larger.priority
        assert smaller.max_files_per_batch < larger.max_files_per_batch
        assert smaller.max_file_bytes < larger.max_file_bytes
        assert smaller.max_pending_jobs < larger.max_pending_jobs
    assert (tiers["standard"].upload_rate, tiers["standard"].read_rate) == ("10/minute", "100/minute")
    assert tiers["enterprise"].max_file_bytes == 100 * 1024 * 1024


def test_unknown_tier_names_the_known_ones() -> None:
    with pytest.raises(TierError, match="unknown tier 'gold' \\(known: free, standard, premium, enterprise\\)"):
        Tiers.load(DEFAULT_TIERS_FILE, max_priority=10)["gold"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[tiers.free]" + VALID_TIER.replace("priority = 1", "priority = 11") + UNAUTHENTICATED,
         r"\[tiers.free\] priority must be an integer from 0 to 10"),
        ("[tiers.free]" + VALID_TIER.replace('"3/minute"', '"three a minute"') + UNAUTHENTICATED,
         r"\[tiers.free\] upload_rate: 'three a minute' is not a rate"),
        ("[tiers.free]" + VALID_TIER.replace("retention_days = 1", "") + UNAUTHENTICATED,
         r"\[tiers.free\] is missing retention_days"),
        ("[tiers.free]" + VALID_TIER + "max_file_size = 3\n" + UNAUTHENTICATED,
         r"\[tiers.free\] has unknown keys max_file_size"),
        ("[tiers.free]" + VALID_TIER.replace("max_pending_jobs = 20", 'max_pending_jobs = "lots"') + UNAUTHENTICATED,
         r"\[tiers.free\] max_pending_jobs must be a non-negative integer"),
        ("[tiers.free]" + VALID_TIER, r"\[unauthenticated\] limits are missing"),
        ("[tiers.free\n", "tiers.toml"),
        (UNAUTHENTICATED, "no tiers defined"),
    ],
)
def test_malformed_tier_files_are_rejected_naming_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tiers.toml"
    path.write_text(content)
    with pytest.raises(TierError, match=message):
        Tiers.load(path, max_priority=10)


def test_a_priority_above_the_queue_ceiling_is_rejected() -> None:
    with pytest.raises(TierError, match="from 0 to 5"):
        Tiers.load(DEFAULT_TIERS_FILE, max_priority=5)


def test_the_gateway_refuses_to_start_on_a_bad_tiers_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[tiers.free]\npriority = 1\n" + UNAUTHENTICATED)
    settings = Settings.from_env({"CONVEYOR_JWT_SECRET": "s" * 40, "CONVEYOR_TIERS_FILE": str(broken)})
    with pytest.raises(TierError, match=r"\[tiers.free\] is missing"):
        create_app(settings)
