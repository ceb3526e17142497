"""Why something cannot go ahead, said once for every reader.

A problem is its English text (what logs and the command line print, and what older
rows stored) that also carries a message key (app/messages) and its parameters, so that
a page can say it in the reader's language (app.i18n.say). Being a `str`, it goes
wherever a reason string went before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Problem(str):
    key: str
    params: dict[str, Any]

    def __new__(cls, text: str, key: str, **params: Any) -> Problem:
        problem = super().__new__(cls, text)
        problem.key, problem.params = key, params
        return problem

    def __getnewargs_ex__(self) -> tuple[tuple[str, str], dict[str, Any]]:
        # Copies and pickles keep the key and parameters (str's own would drop them).
        return (str(self), self.key), self.params

    def code(self) -> dict[str, Any]:
        """What is stored to say it again in another language."""
        return {"key": self.key, "params": self.params}


def codes(reasons: Sequence[str]) -> list[dict[str, Any] | None]:
    """Each reason's code; None for a plain string, which can only be shown as written."""
    return [reason.code() if isinstance(reason, Problem) else None for reason in reasons]
