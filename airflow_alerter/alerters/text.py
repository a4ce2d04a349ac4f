"""Fitting user text into what a chat accepts, one way for every chat flavor.

Each chat caps its fields and refuses a whole message over a bad link, so the flavors cut text
and vet log links alike; a fix here reaches Slack, Discord and the webhook presets at once.
"""

from __future__ import annotations

from typing import Any

ELLIPSIS = "…"


def cut(text: str, size: int) -> str:
    """``text`` within ``size`` characters, ending in an ellipsis when it had to be cut."""
    return text if len(text) <= size else text[: size - 1] + ELLIPSIS


def is_web_url(value: Any) -> bool:
    """An http(s) URL without spaces: chats refuse a whole message or card whose link is anything else."""
    return isinstance(value, str) and value.startswith(("https://", "http://")) and " " not in value
