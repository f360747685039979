"""``explain``: an AADSTS code or a pasted error message in, cause, remedy and "does waiting help?" out.

No I/O at all: the catalogue (:mod:`rotation.domain.aadsts`) answers. Here is only how an
explanation reads, as text for a terminal or as the ``--json`` document; the command line parses
the arguments and chooses the exit status.
"""

from __future__ import annotations

from typing import Any, Final

from rotation.domain import aadsts

#: Said when the input holds no code at all: how to paste it so that one is found.
NO_CODE: Final = "No AADSTS code found. Paste the whole error message, or just the number (e.g. 7000215)."

#: "Does waiting help?" by the catalogue's classification of a code.
WAITING: Final[dict[aadsts.Classification, str]] = {
    "propagation": "only if the secret (or certificate) was added in the last few minutes (Entra replicates a "
    "new credential within seconds to about two minutes); otherwise no",
    "transient": "yes, try again shortly",
    "permanent": "no, waiting does not fix it",
    "unknown": "unknown",
}


def no_code_json() -> dict[str, Any]:
    return {"ok": False, "explained": False, "error": {"code": "NoCode", "message": NO_CODE}}


def explanation_json(explanation: aadsts.Explanation) -> dict[str, Any]:
    known = explanation.entry is not None
    return {
        "ok": known,
        "explained": known,
        "code": explanation.code,
        "title": explanation.title,
        "classification": explanation.classification,
        "waitingHelps": WAITING[explanation.classification],
        "causes": list(explanation.entry.causes) if explanation.entry else [],
        "remedy": explanation.remedy,
        "docs": explanation.docs_url,
    }


def explanation_text(explanation: aadsts.Explanation) -> str:
    if explanation.entry is None:
        return f"AADSTS{explanation.code} is not in the rotator's catalogue.\nLook it up: {explanation.docs_url}"
    return f"{explanation.render()}\nDoes waiting help? {WAITING[explanation.classification]}."
