"""A local Azure OpenAI emulator for development and tests (never deployed).

Speaks the dated (`/openai/deployments/{d}/chat/completions?api-version=`) and v1
(`/openai/v1/chat/completions`) wire formats, streaming and not, with deterministic
answers (`expected_answer`), realistic pacing and fault injection. See README.md.
"""

from ._control import Control, ControlError, parse_control, strip_marker
from ._pacing import Pacing
from ._plan import expected_answer, expected_tokens
from ._profiles import CHAT, DEFAULT_DEPLOYMENTS, REASONING, Profile
from ._server import DEFAULT_API_KEY, OpenAIEmulator, run_in_thread
from ._stats import Stats

__all__ = [
    "CHAT",
    "DEFAULT_API_KEY",
    "DEFAULT_DEPLOYMENTS",
    "REASONING",
    "Control",
    "ControlError",
    "OpenAIEmulator",
    "Pacing",
    "Profile",
    "Stats",
    "expected_answer",
    "expected_tokens",
    "parse_control",
    "run_in_thread",
    "strip_marker",
]
