from __future__ import annotations

import pytest

from gateway.uploads import MAX_FILENAME_LENGTH, display_filename


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\notes.txt", "notes.txt"),
        ("bell\x07\x00name.txt", "bellname.txt"),
        ("dir/", "unnamed"),
        ("", "unnamed"),
    ],
)
def test_display_filename_is_a_safe_label(raw: str, shown: str) -> None:
    assert display_filename(raw) == shown


def test_display_filename_is_bounded() -> None:
    assert len(display_filename("x" * 1000)) == MAX_FILENAME_LENGTH
