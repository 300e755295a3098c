from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.tiers import DEFAULT_TIERS_FILE, TierError, Tiers


def test_shipped_tiers_rank_by_priority() -> None:
    tiers = Tiers.load(DEFAULT_TIERS_FILE, max_priority=10)
    assert tiers.names == ["free", "standard", "premium", "enterprise"]
    assert tiers["free"].priority < tiers["standard"].priority < tiers["premium"].priority < tiers["enterprise"].priority


def test_unknown_tier_names_the_known_ones() -> None:
    with pytest.raises(TierError, match="unknown tier 'gold' \\(known: free, standard, premium, enterprise\\)"):
        Tiers.load(DEFAULT_TIERS_FILE, max_priority=10)["gold"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[tiers.free]\npriority = 11\n", "tier 'free': priority must be an integer from 0 to 10"),
        ("[tiers.free]\npriority = 'high'\n", "tier 'free': priority must be"),
        ("[tiers.free\n", "tiers.toml"),
        ("", "no tiers defined"),
    ],
)
def test_malformed_tier_files_are_rejected(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tiers.toml"
    path.write_text(content)
    with pytest.raises(TierError, match=message):
        Tiers.load(path, max_priority=10)


def test_a_priority_above_the_queue_ceiling_is_rejected() -> None:
    with pytest.raises(TierError, match="from 0 to 5"):
        Tiers.load(DEFAULT_TIERS_FILE, max_priority=5)
