"""An instruction dataset as one manifest: its crops, its examples, how it was balanced.

Pure: verified region answers and the versioned data in, a JSON-able dict out. The
manifest holds no clock and no database id of its own, so the same answers with the same
data give the same bytes, and its sha256 is the snapshot's id (two builds of the same data
are one snapshot). A crop is named by its photo (object key and content hash), its box
and the context the pipeline cuts around a box, so the crop can be cut again exactly.

Class balance follows the detector's rule (models.training.balance): crops of rare
defect types are repeated until each type has its share, and every example of a
repeated crop goes with it (`repeat` on the crop says how often the crop counts).

Examples the ML team excluded (app.instructions.exclusions records them) are left out of
every build, and a crop left with no example goes too; the manifest lists the ids it
left out. A snapshot less some examples (without_examples) is the manifest the same
answers build with those examples excluded, so "exclude from a snapshot" and "build
again with the exclusions" agree to the byte.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from app.instructions.answers import RegionAnswer
from app.instructions.examples import Context, Example
from app.instructions.facts import fact_examples
from app.instructions.kinds import KINDS
from app.instructions.reasoning import (
    contrast_examples,
    counterfactual_examples,
    failure_examples,
)
from models.taxonomy import LANGUAGES
from models.training.balance import MAX_EXTRA, MIN_SHARE, oversample_items

FORMAT = "loupe.instructions/1"
# The fabric the pipeline keeps around a box (models.pipeline.PipelineOptions.context).
CONTEXT = 0.15

Builder = Callable[[RegionAnswer, Context, str], list[Example]]
BUILDERS: dict[str, Builder] = {
    "A": fact_examples,
    "B": contrast_examples,
    "C": counterfactual_examples,
    "D": failure_examples,
}


@dataclass(frozen=True)
class BuildOptions:
    kinds: tuple[str, ...] = KINDS
    languages: tuple[str, ...] = LANGUAGES
    min_share: float = MIN_SHARE  # 0 turns oversampling off
    max_extra: float = MAX_EXTRA
    context: float = CONTEXT

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        unknown += [lang for lang in self.languages if lang not in LANGUAGES]
        if unknown or not self.kinds or not self.languages:
            raise ValueError(
                f"kinds are {', '.join(KINDS)} and languages {', '.join(LANGUAGES)}; "
                f"got {list(self.kinds)} and {list(self.languages)}"
            )
        if not 0.0 <= self.min_share < 1.0 or self.max_extra < 0:
            raise ValueError("min_share must be in [0, 1) and max_extra at least 0")
        # One order for the same request, however it was spelled ("ko,en" or "en,ko").
        object.__setattr__(self, "kinds", tuple(k for k in KINDS if k in self.kinds))
        object.__setattr__(self, "languages", tuple(sorted(set(self.languages))))


def examples_for(answer: RegionAnswer, ctx: Context, options: BuildOptions) -> list[Example]:
    return [
        example
        for kind in options.kinds
        for language in options.languages
        for example in BUILDERS[kind](answer, ctx, language)
    ]


def build_manifest(
    answers: Sequence[RegionAnswer],
    ctx: Context,
    options: BuildOptions,
    excluded: Collection[str] = frozenset(),
) -> dict[str, Any]:
    """The manifest of these answers: every example of the asked kinds and languages, less
    the example ids in `excluded`."""
    # A type the taxonomy no longer has cannot be an allowed answer: it cannot be taught.
    usable = sorted((a for a in answers if ctx.is_type(a.defect_type)), key=lambda a: a.crop_id)
    built = [(a, examples_for(a, ctx, options)) for a in usable]
    left_out = sorted(e.id for _, examples in built for e in examples if e.id in excluded)
    built = [(a, [e for e in examples if e.id not in excluded]) for a, examples in built]
    built = [(a, examples) for a, examples in built if examples]
    manifest = {
        "format": FORMAT,
        "templates": {"version": ctx.templates.version, "sha256": ctx.templates.sha256},
        "prompts": ctx.prompts.version,
        "exceptions": ctx.exceptions.version,
        "taxonomy": ctx.taxonomy.version,
        "kinds": list(options.kinds),
        "languages": list(options.languages),
        "context": options.context,
        "system": {lang: ctx.questionnaire(lang).prompt_set.system for lang in options.languages},
        "left_out": {"unknown_types": len(answers) - len(usable)},
        "crops": [_crop(a) for a, _ in built],
        "examples": [_example(e) for _, examples in built for e in examples],
    }
    return _balanced(manifest, options.min_share, options.max_extra, left_out)


def without_examples(manifest: dict[str, Any], example_ids: Collection[str]) -> dict[str, Any]:
    """A new manifest: `manifest` less these examples, less the crops left with none, with
    its class balance worked out again over the crops that stay."""
    gone = set(example_ids)
    examples = [e for e in manifest["examples"] if e["id"] not in gone]
    kept = {e["crop"] for e in examples}
    removed = {e["id"] for e in manifest["examples"] if e["id"] in gone}
    smaller = {
        **manifest,
        "crops": [{**c, "repeat": 1} for c in manifest["crops"] if c["id"] in kept],
        "examples": examples,
    }
    balance = manifest["balance"]
    left_out = sorted(removed | set(manifest.get("excluded", ())))
    return _balanced(smaller, balance["min_share"], balance["max_extra"], left_out)


def _balanced(
    manifest: dict[str, Any], min_share: float, max_extra: float, excluded: list[str]
) -> dict[str, Any]:
    """The manifest with its crops' repeats and balance report (and the ids it left out,
    where there are any: a build without exclusions keeps the bytes it always had)."""
    crops = manifest["crops"]
    sampling = oversample_items([(c["id"], c["defect_type"]) for c in crops], min_share,
                                max_extra)  # fmt: skip
    balanced = {key: value for key, value in manifest.items() if key != "excluded"}
    balanced["balance"] = {
        "min_share": min_share,
        "target_share": sampling.target_share,
        "max_extra": max_extra,
        "crops_before": sampling.before,
        "crops_after": sampling.after,
        "added": sampling.added,
        "reached": sampling.reached,
    }
    balanced["crops"] = [{**c, "repeat": 1 + sampling.extra.get(c["id"], 0)} for c in crops]
    if excluded:
        balanced["excluded"] = excluded
    return balanced


def _crop(answer: RegionAnswer) -> dict[str, Any]:
    model = answer.model
    return {
        "id": answer.crop_id,
        "decision_id": answer.decision_id,
        "inspection_id": answer.inspection_id,
        "key": answer.photo_key,
        "sha256": answer.photo_sha256,
        "box": list(answer.box),
        "outcome": answer.outcome,
        "defect_type": answer.defect_type,
        "severity": answer.severity,
        "model": None if model is None else {
            "defect_type": model.defect_type,
            "severity": model.severity,
            "probability": model.probability,
            "candidate_type": model.candidate_type,
            "overturned_by": [c.key for c in model.overturned_by],
        },
        "tags": list(answer.tags),
        "note": answer.note,
        "repeat": 1,  # set by _balanced
    }  # fmt: skip


def _example(example: Example) -> dict[str, Any]:
    return {
        "id": example.id,
        "crop": example.crop_id,
        "kind": example.kind,
        "form": example.form,
        "language": example.language,
        "defect_type": example.defect_type,
        "user": example.user,
        "assistant": example.assistant,
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def snapshot_id(manifest: dict[str, Any]) -> str:
    """The snapshot's id: the sha256 of its manifest's bytes."""
    return hashlib.sha256(manifest_bytes(manifest)).hexdigest()


def manifest_counts(manifest: dict[str, Any]) -> dict[str, Any]:
    """Examples per kind, defect type and language; `samples` count a crop's repeats."""
    repeat = {crop["id"]: crop["repeat"] for crop in manifest["crops"]}
    counts: dict[str, Counter[str]] = {
        name: Counter() for name in ("kind", "type", "language", "kind_samples", "type_samples")
    }
    for example in manifest["examples"]:
        times = repeat[example["crop"]]
        counts["kind"][example["kind"]] += 1
        counts["type"][example["defect_type"]] += 1
        counts["language"][example["language"]] += 1
        counts["kind_samples"][example["kind"]] += times
        counts["type_samples"][example["defect_type"]] += times
    return {
        "crops": len(manifest["crops"]),
        "examples": len(manifest["examples"]),
        "samples": sum(counts["kind_samples"].values()),
        "by_kind": dict(sorted(counts["kind"].items())),
        "by_type": dict(sorted(counts["type"].items())),
        "by_language": dict(sorted(counts["language"].items())),
        "samples_by_kind": dict(sorted(counts["kind_samples"].items())),
        "samples_by_type": dict(sorted(counts["type_samples"].items())),
        "max_decision_id": max((c["decision_id"] for c in manifest["crops"]), default=None),
    }
