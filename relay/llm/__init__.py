"""Azure OpenAI streaming for the core: `LLMClient.stream(request)` yields `StreamEvent`s."""

from ._client import COGNITIVE_SCOPE, LLMClient
from ._errors import map_llm_error, retry_after_seconds
from ._events import StreamEnd, StreamEvent, TextDelta, Usage

__all__ = [
    "COGNITIVE_SCOPE",
    "LLMClient",
    "StreamEnd",
    "StreamEvent",
    "TextDelta",
    "Usage",
    "map_llm_error",
    "retry_after_seconds",
]
