"""The one exception for bad input: media that cannot give what one utterance needs."""

from __future__ import annotations


class BadInput(Exception):
    """Bad input for one utterance. `kind` is a short fixed phrase ("missing audio") that summaries
    group by; the message is "<kind>: <detail>", with the detail naming the file and what was wrong."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
