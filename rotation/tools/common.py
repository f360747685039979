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


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Plain-text columns, padded to the widest cell (the CLI's tables and the inventory's)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(lines)
