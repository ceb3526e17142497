"""The audit draw: a reproducible uniform number per inspection.

Hashing the inspection id (rather than calling random()) makes the draw the same on a
retried task, so a redelivered item can never flip between audited and not audited.
"""

from __future__ import annotations

import hashlib


def audit_draw(inspection_id: str, salt: str = "audit-v1") -> float:
    """A number in [0, 1), uniform over ids, fixed for a given id and salt."""
    digest = hashlib.sha256(f"{salt}:{inspection_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
