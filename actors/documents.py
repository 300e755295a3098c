"""The document pipeline: detect, extract, count, hash and chunk one upload,
then analyse every chunk — in the job itself, or for a large document in
parts that run in parallel on the ``analysis`` queue and are aggregated into
the one job result (the batch still counts one job)."""

from __future__ import annotations

from typing import Any

from actors.chunk_analysis import analyse_chunk, document_keywords
from actors.document_analysis import ChunkingPolicy, analyse_document
from actors.job_context import JobContext, current_job
from conveyor.pipelines import DOCUMENT_PARTS

FAN_OUT_CHUNKS = 64  # documents with more chunks than this fan out
CHUNKS_PER_PART = 32


def _analyse_chunks(job: JobContext, text: str, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    analysed = []
    for chunk in chunks:
        job.checkpoint()
        analysed.append(analyse_chunk(chunk["index"], chunk["start"], chunk["end"], text))
        job.result["chunks"] = analysed
    return analysed


def process_document(job_id: str) -> None:
    """Analyse the job's blob; the extracted text is stored as a blob of its own
    and the result names it, so large texts never sit in a ledger row."""
    job = current_job()
    content = job.blobs.read(job.record.blob_sha256)
    job.checkpoint()
    chunking = ChunkingPolicy(size=job.settings.chunk_size, overlap=job.settings.chunk_overlap)
    analysis = analyse_document(content, job.record.filename, chunking)
    text = analysis.text
    job.output_sha256 = job.blobs.put(text.encode("utf-8"))
    summary = {**analysis.summary(), "text_sha256": job.output_sha256}
    chunks = summary.pop("chunks")
    job.result = {**summary, "chunks": []}
    if len(chunks) <= FAN_OUT_CHUNKS:
        analysed = _analyse_chunks(job, text, chunks)
        job.result["keywords"] = document_keywords(analysed)
        return
    parts = [chunks[start : start + CHUNKS_PER_PART] for start in range(0, len(chunks), CHUNKS_PER_PART)]
    job.result = {**summary, "part_chunks": parts}
    open_parts = job.ledger.fan_out(job_id, len(parts), job.result, job.output_sha256)
    job.fanned_out = True
    for part in open_parts:
        job.broker.enqueue(DOCUMENT_PARTS.job_message(job_id, job.priority, part=part))


def process_document_part(job_id: str, part: int) -> None:
    """Analyse one part's chunks of a fanned-out document (its text from the blob store)."""
    job = current_job()
    document = job.record.result or {}
    text = job.blobs.read(document["text_sha256"]).decode("utf-8")
    job.result = {"chunks": []}
    _analyse_chunks(job, text, document["part_chunks"][part])
