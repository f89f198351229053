"""The job store: records, attempts and transcripts on Azure Table storage."""

from __future__ import annotations

from ._jobstore import JobStore
from ._model import Event, JobRecord, Metrics, Run
from ._runs import RecordedBatch

__all__ = ["Event", "JobRecord", "JobStore", "Metrics", "RecordedBatch", "Run"]
