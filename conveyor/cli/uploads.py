"""What ``conveyor submit`` sends: the files named by paths, folders and globs,
streamed as one multipart body whose length is known in advance (so nginx and
the gateway see a plain upload) while a callback hears every chunk sent."""

from __future__ import annotations

import glob
import mimetypes
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 256 * 1024


class NoFiles(ValueError):
    """The paths named no file."""


def collect(paths: Sequence[str], recursive: bool = True) -> list[Path]:
    """Files named directly, every file under a named folder (recursively by
    default, hidden files skipped), and the files a glob matches; each once, in order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            candidates = [path]
        elif path.is_dir():
            pattern = "**/*" if recursive else "*"
            candidates = sorted(p for p in path.glob(pattern) if p.is_file() and not _hidden(p.relative_to(path)))
        else:
            candidates = sorted(Path(match) for match in glob.glob(raw, recursive=True) if Path(match).is_file())
            if not candidates:
                raise NoFiles(f"{raw}: no such file, folder or matching file")
        found += [candidate for candidate in candidates if candidate not in found]
    if not found:
        raise NoFiles("the paths hold no file")
    return found


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


@dataclass(frozen=True)
class MultipartBody:
    """``files`` (and text ``fields``) as multipart/form-data, streamed from disk."""

    files: Sequence[Path]
    fields: dict[str, str]
    boundary: str

    @classmethod
    def of(cls, files: Sequence[Path], fields: dict[str, str] | None = None) -> MultipartBody:
        return cls(files, dict(fields or {}), uuid.uuid4().hex)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _field_part(self, name: str, value: str) -> bytes:
        return f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()

    def _file_head(self, path: Path) -> bytes:
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        name = path.name.replace('"', "%22")
        return (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: {media_type}\r\n\r\n"
        ).encode()

    @property
    def _closing(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()

    @property
    def file_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files)

    def __len__(self) -> int:
        framing = sum(len(self._field_part(name, value)) for name, value in self.fields.items())
        framing += sum(len(self._file_head(path)) + 2 for path in self.files) + len(self._closing)
        return framing + self.file_bytes

    def stream(self, sent: Callable[[int], object] = lambda count: None) -> Iterator[bytes]:
        """The body; ``sent(n)`` after each chunk of file content."""
        for name, value in self.fields.items():
            yield self._field_part(name, value)
        for path in self.files:
            yield self._file_head(path)
            with path.open("rb") as file:
                while chunk := file.read(CHUNK_BYTES):
                    yield chunk
                    sent(len(chunk))
            yield b"\r\n"
        yield self._closing
