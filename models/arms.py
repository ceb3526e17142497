"""Which arm of an experiment decides an inspection: champion or challenger.

The arm comes from a hash of the inspection id, not from random(): a retried or
redelivered task lands in the same arm, and an analysis can recompute who got what. The
salt includes the experiment name, so each experiment draws afresh, and it differs from
the audit draw's salt (app/policy/sampling.py): otherwise audits, the only unbiased
measure of automatic decisions, would all fall into one arm.
"""

from __future__ import annotations

import hashlib

from models.contracts import CHALLENGER, CHAMPION


def arm_draw(inspection_id: str, experiment: str = "") -> float:
    """A number in [0, 1), uniform over ids, fixed for a given id and experiment."""
    digest = hashlib.sha256(f"arm-v1:{experiment}:{inspection_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_arm(inspection_id: str, challenger_share: float, experiment: str = "") -> str:
    """The challenger for a `challenger_share` of ids (0..1), the champion for the rest."""
    if not 0.0 <= challenger_share <= 1.0:
        raise ValueError(f"challenger share must be within [0, 1], got {challenger_share}")
    if challenger_share and arm_draw(inspection_id, experiment) < challenger_share:
        return CHALLENGER
    return CHAMPION
