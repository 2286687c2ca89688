"""Token estimates that need no tokenizer download.

Servers report exact counts in their ``usage`` field and those win. When no
count is available (offline model, a server without usage, deciding whether a
conversation fits its window before sending it) this estimate is used: words
cost one token per four characters, each punctuation mark one token, and each
message a small fixed overhead, as chat formats add role markers. It tends to
overestimate English slightly against BPE tokenizers, which is the safe side
for a window budget.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from ._model import Message

_PIECES = re.compile(r"\w+|[^\w\s]", re.UNICODE)
MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    """Estimate the tokens in ``text`` (0 for empty text)."""
    return sum(max(1, math.ceil(len(piece) / 4)) for piece in _PIECES.findall(text))


def estimate_message_tokens(messages: Iterable[Message]) -> int:
    """Estimate the tokens a conversation costs as a prompt, tool calls included."""
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD + estimate_tokens(message.content)
        for call in message.tool_calls:
            total += estimate_tokens(call.name) + estimate_tokens(str(call.arguments))
    return total
