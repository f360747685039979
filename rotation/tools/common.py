"""Text helpers both read-only tools need; neither tool imports the other.

Display names, tags and descriptions are anyone's input (whoever can create an app registration or
write a vault), so whatever reaches a terminal goes through :func:`terminal_safe`.
"""

from __future__ import annotations


def terminal_safe(text: str) -> str:
    """``text`` with every non-printable character (escape sequences above all) shown as ``?``."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def shorten(text: str, limit: int = 60) -> str:
    """A terminal-safe ``text`` of at most ``limit`` characters, for quoting user input in a message."""
    flat = terminal_safe(text)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
