"""The four kinds of instruction examples, named once (kept free of model imports, so the
`loupe` command starts without loading torch)."""

from __future__ import annotations

KINDS = ("A", "B", "C", "D")
KIND_NAMES = {
    "A": "fact verification",
    "B": "compare and contrast",
    "C": "counterfactual",
    "D": "failure analysis",
}
