"""`loupe infer`: one garment's photos through the models and the policy, from a terminal.

It asks the running Serve app when one answers at LOUPE_SERVE_URL, and otherwise loads
the models in this process (LOUPE_DETECTOR_URI / LOUPE_CLASSIFIER_URI, or the demo models
`make run` built under var/models). Nothing is stored; the route shown is what the
policy would decide, without the audit draw.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.inspections.results import region_scores
from models import pipeline
from models.contracts import InferenceResult, RegionToExplain

NO_AUDIT = 1.0
SERVE_PING_TIMEOUT_S = 5.0


@dataclass
class Report:
    source: str  # "serve at URL" or "in-process"
    result: InferenceResult
    route: dict[str, Any]
    reasons: list[str]
    timings_ms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "route": self.route,
            "reasons": self.reasons,
            "timings_ms": self.timings_ms,
            **self.result.to_dict(),
        }


def infer_photos(
    photos: list[bytes], settings: Settings, *, with_reasons: bool, language: str
) -> Report:
    from models.serve.client import HttpInferenceClient, ping

    # The health check asks every replica for its version: seconds on a busy machine, and
    # a check that gives up too soon would load the models here instead.
    if ping(settings.serve_url, timeout=SERVE_PING_TIMEOUT_S):
        source = f"serve at {settings.serve_url}"
        started = time.perf_counter()
        with HttpInferenceClient(settings.serve_url, timeout_s=settings.inference_timeout_s) as c:
            result = c.infer(inspection_id=f"cli-{uuid.uuid4()}", photos=photos)
            inferred = time.perf_counter()
            regions = _to_explain(result) if with_reasons else []
            reasons = _explain_http(c, result, photos, regions, language)
    else:
        source = "in-process"
        models, options = _load_in_process(settings)
        started = time.perf_counter()  # loading the models is not part of an inference
        result = asyncio.run(pipeline.inspect(photos, models, options, "champion"))
        inferred = time.perf_counter()
        regions = _to_explain(result) if with_reasons else []
        reasons = _explain_local(photos, regions, models, options, language)
    finished = time.perf_counter()
    timings = {
        **result.timings,
        "round_trip_ms": round((inferred - started) * 1000, 2),
        "reasons_ms": round((finished - inferred) * 1000, 2),
    }
    return Report(source, result, _route(result, settings), reasons, timings)


def _route(result: InferenceResult, settings: Settings) -> dict[str, Any]:
    decided = settings.routing.route(
        region_scores(result), NO_AUDIT, cold_start=result.classifier_only
    )
    return {
        "kind": decided.kind,
        "reason": decided.reason,
        "confidence": decided.confidence,
        "verdict": decided.verdict,
        "severity": decided.severity,
    }


def _to_explain(result: InferenceResult) -> list[RegionToExplain]:
    return [
        RegionToExplain(
            r.photo_index,
            r.box,
            r.classification.defect_type,
            r.classification.severity,
            r.classification.candidate_type,
        )
        for r in result.regions
        if not r.classification.error
    ]


def _explain_http(
    client: Any, result: InferenceResult, photos: list[bytes], regions: list[RegionToExplain],
    language: str,
) -> list[str]:  # fmt: skip
    if not regions:
        return []
    return list(
        client.explain(
            inspection_id="cli", arm=result.arm, photos=photos, regions=regions, language=language
        )
    )


def _load_in_process(settings: Settings) -> tuple[pipeline.ArmModels, pipeline.PipelineOptions]:
    from models.classifier import QwenClassifier
    from models.detector import RTDetrDetector
    from models.prompts import load_prompts

    detector_uri, classifier_uri = local_models(settings)
    device, cache = settings.model_device, settings.model_cache
    detector = None
    if detector_uri:
        detector = RTDetrDetector.load(
            _resolved(detector_uri, cache), device=device,
            threshold=settings.routing.thresholds.detector,
            max_regions=settings.detector_max_regions,
        )  # fmt: skip
    classifier = QwenClassifier.load(
        _resolved(classifier_uri, cache), language=settings.classifier_language,
        prompts=load_prompts(settings.prompt_version), device=device,
    )  # fmt: skip
    models = pipeline.in_process(detector, classifier)
    return models, pipeline.PipelineOptions(min_region_px=settings.min_region_px)


def _explain_local(
    photos: list[bytes], regions: list[RegionToExplain], models: pipeline.ArmModels,
    options: pipeline.PipelineOptions, language: str,
) -> list[str]:  # fmt: skip
    if not regions:
        return []
    return asyncio.run(pipeline.explain(photos, regions, models, options, language))


def local_models(settings: Settings) -> tuple[str, str]:
    """(detector URI or "", classifier URI) from the settings, or `make run`'s demo models."""
    if settings.classifier_uri:
        return settings.detector_uri, settings.classifier_uri
    demo = settings.var_dir / "models"
    if (demo / "classifier" / "config.json").is_file():
        detector = demo / "detector"
        return (str(detector) if (detector / "config.json").is_file() else ""), str(
            demo / "classifier"
        )
    raise FileNotFoundError(
        "no Serve app answers and no models are configured: set LOUPE_CLASSIFIER_URI "
        "(and LOUPE_DETECTOR_URI), or run `loupe run` once to build the demo models"
    )


def _resolved(uri: str, cache: Path) -> str:
    from models.loading import resolve_model_dir

    return resolve_model_dir(uri, cache)


def format_report(report: Report) -> str:
    """The human-readable report: route, then one block per region."""
    r, lines = report.result, []
    route_line = f"route: {report.route['kind']} ({report.route['reason']})"
    if report.route["confidence"] is not None:
        route_line += f", confidence {report.route['confidence']:.3f}"
    lines += [f"source: {report.source}, arm {r.arm}", route_line]
    lines.append(
        f"detector {r.detector_version or '(none: classifier-only)'}, "
        f"classifier {r.classifier_version}, prompts {r.prompt_version}"
    )
    explained = iter(report.reasons)
    for i, region in enumerate(r.regions):
        c, b = region.classification, region.box
        lines.append(
            f"region {i}: photo {region.photo_index} box ({b.x1:.0f},{b.y1:.0f})-"
            f"({b.x2:.0f},{b.y2:.0f}) detector {region.detector_score:.3f}"
        )
        if c.error:
            lines.append(f"  error: {c.error}")
            continue
        lines.append(
            f"  {c.defect_type} p={c.type_probability:.3f} ({c.severity} "
            f"p={c.severity_probability:.3f}), step 1 candidate {c.candidate_type}"
        )
        lines.append("  types: " + _top(c.type_distribution))
        lines.append("  severities: " + _top(c.severity_distribution))
        for e in c.exceptions:
            fired = " FIRED" if e.fired else ""
            lines.append(f"  exception {e.key}: {e.probability:.3f} (>= {e.threshold}){fired}")
        if report.reasons:
            lines.append(f"  reason: {next(explained, '')}")
    lines.append("timings: " + ", ".join(f"{k} {v:.0f}" for k, v in report.timings_ms.items()))
    return "\n".join(lines)


def _top(distribution: dict[str, float], count: int = 4) -> str:
    best = sorted(distribution.items(), key=lambda item: item[1], reverse=True)[:count]
    return ", ".join(f"{key} {p:.3f}" for key, p in best)
