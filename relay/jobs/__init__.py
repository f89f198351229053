"""Jobs: what a caller may ask for, validated once, and how it maps to a model request.

- `_model`: `JobRequest`, `ChatMessage`, `Target`, `Limits` (the frozen job and its parts).
- `_validate`: `parse_job_request` for `POST /api/jobs` bodies; group and connection names.
- `_profiles`: `build_chat_request`, the job as `chat.completions.create` arguments per profile.

Import from `relay.jobs`; the submodules are its private layout. No I/O here.
"""

from ._model import ChatMessage, JobRequest, Limits, Role, Target
from ._profiles import PROFILE_FIELDS, Profile, build_chat_request
from ._validate import parse_job_request, validate_connection_id, validate_group_name

__all__ = [
    "PROFILE_FIELDS",
    "ChatMessage",
    "JobRequest",
    "Limits",
    "Profile",
    "Role",
    "Target",
    "build_chat_request",
    "parse_job_request",
    "validate_connection_id",
    "validate_group_name",
]
