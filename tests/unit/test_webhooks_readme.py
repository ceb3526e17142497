"""The README's verification snippet for receivers accepts what Loupe signs and refuses
the rest: a receiver that copies it works."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from app.policy.webhooks import signature

README = Path(__file__).resolve().parents[2] / "README.md"


def _snippet() -> Any:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Webhooks") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code, "no python snippet under ### Webhooks"
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)  # noqa: S102 (our own README)
    return scope["verified"]


def test_the_readme_snippet_verifies_loupes_signature():
    verified = _snippet()
    secret, body, now = "whsec_readme-secret-123", b'{"id":"e1"}', int(time.time())
    assert verified(secret, body, signature(secret, body, now))
    assert not verified(secret, body + b"x", signature(secret, body, now))
    assert not verified("whsec_other-secret-456", body, signature(secret, body, now))
    assert not verified(secret, body, signature(secret, body, now - 3600))  # a replay
    for header in ("", "t=soon", f"t={now}", "garbage", f"t={now},v1=é"):
        assert not verified(secret, body, header)
