"""The document pipeline: detect, extract, count, hash and chunk one upload."""

from __future__ import annotations

from actors.document_analysis import ChunkingPolicy, analyse_document
from actors.job_context import current_job


def process_document(job_id: str) -> None:
    """Analyse the job's blob; the extracted text is stored as a blob of its own
    and the result names it, so large texts never sit in a ledger row."""
    job = current_job()
    content = job.blobs.read(job.record.blob_sha256)
    chunking = ChunkingPolicy(size=job.settings.chunk_size, overlap=job.settings.chunk_overlap)
    analysis = analyse_document(content, job.record.filename, chunking)
    text_sha256 = job.blobs.put(analysis.text.encode("utf-8"))
    job.result = {**analysis.summary(), "text_sha256": text_sha256}
