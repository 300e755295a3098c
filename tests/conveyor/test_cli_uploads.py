"""What ``conveyor submit`` collects from its paths and how it frames them."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from conveyor.cli.uploads import MultipartBody, NoFiles, collect


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    (tmp_path / "docs" / "a.txt").write_text("alpha")
    (tmp_path / "docs" / "deep" / "b.csv").write_text("x,y\n1,2\n")
    (tmp_path / "docs" / ".hidden").write_text("skip me")
    (tmp_path / "docs" / ".git").mkdir()
    (tmp_path / "docs" / ".git" / "config").write_text("skip me too")
    (tmp_path / "c.md").write_text("# c")
    return tmp_path


def test_files_folders_and_globs_are_collected_once_in_order(tree: Path) -> None:
    found = collect([str(tree / "c.md"), str(tree / "docs"), str(tree / "**" / "*.txt")])
    assert [path.relative_to(tree).as_posix() for path in found] == ["c.md", "docs/a.txt", "docs/deep/b.csv"]


def test_a_path_that_names_nothing_is_an_error(tree: Path) -> None:
    with pytest.raises(NoFiles, match="no-such"):
        collect([str(tree / "no-such*.pdf")])


def test_the_body_is_as_long_as_announced_and_parses_back(tree: Path) -> None:
    files = collect([str(tree / "docs"), str(tree / "c.md")])
    body = MultipartBody.of(files, {"callback_url": "https://example.com/hook"})
    sent: list[int] = []
    raw = b"".join(body.stream(sent.append))
    assert len(raw) == len(body)
    assert sum(sent) == body.file_bytes == 5 + 8 + 3
    message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {body.content_type}\r\n\r\n".encode() + raw)
    parts = {
        part.get_filename() or part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        for part in message.iter_parts()
    }
    assert parts == {"callback_url": b"https://example.com/hook", "a.txt": b"alpha", "b.csv": b"x,y\n1,2\n", "c.md": b"# c"}
