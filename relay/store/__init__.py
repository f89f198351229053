"""The job store: records, attempts and transcripts on Azure Table storage."""

from __future__ import annotations

from ._jobstore import JobStore, RecordedBatch
from ._model import Event, JobRecord, Metrics, Run

__all__ = ["Event", "JobRecord", "JobStore", "Metrics", "RecordedBatch", "Run"]
