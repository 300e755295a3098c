"""The benchmark's measuring code (the run itself is `make bench`): the
percentiles, the corpus it submits, and how a py-spy profile is summed."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from pypdf import PdfReader

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # after the packages: no shadowing

import profiles  # noqa: E402 - benchmarks/ is not a package
from throughput import percentile, realistic_documents, tiny_documents  # noqa: E402


def test_percentiles_pick_the_nearest_rank() -> None:
    values = [float(value) for value in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


def test_the_corpus_mixes_text_csv_and_readable_pdfs() -> None:
    documents = realistic_documents(6)
    kinds = sorted(name.rsplit(".", 1)[1] for name in documents)
    assert kinds == ["csv", "csv", "pdf", "pdf", "txt", "txt"]
    pdf = next(content for name, content in documents.items() if name.endswith(".pdf"))
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 5
    assert PdfReader(io.BytesIO(pdf)).pages[0].extract_text().strip()
    assert len(set(tiny_documents(50).values())) == 50, "tiny documents differ, so no blob is shared"


def test_a_profile_counts_busy_samples_of_conveyor_code_only(tmp_path: Path) -> None:
    collapsed = tmp_path / "profile.txt"
    collapsed.write_text(
        "process 1;run (dramatiq/worker.py:10);put (conveyor/blobs.py:90);commit (conveyor/blobs.py:79) 30\n"
        "process 1;run (dramatiq/worker.py:10);start_job (conveyor/ledger/repository.py:320) 10\n"
        "process 1;run (dramatiq/worker.py:10);consume (pika/adapters/blocking_connection.py:1);poll (selectors.py:1) 60\n"
    )
    shares = {row["function"]: row["share"] for row in profiles.summarise(collapsed)}
    assert shares == {
        "put (conveyor/blobs.py)": 0.75,
        "commit (conveyor/blobs.py)": 0.75,
        "start_job (conveyor/ledger/repository.py)": 0.25,
    }, "idle samples (a thread waiting in poll) and framework frames are left out"
