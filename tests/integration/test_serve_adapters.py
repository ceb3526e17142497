"""Tuned classifiers served per arm: a base plus a LoRA adapter, swapped without a redeploy.

Two tiny adapters are tuned on the session's tiny base classifier (a few steps each, the
production tuning code); the first is published as app.learning.publish publishes a model
(a copy with loupe-manifest.json, and to S3). The registry's rows become a serving plan,
the plan reaches a Serve app through the runner as production's Serve process applies
it, and the replicas report the adapter's version and answer with it, while the champion
on the same base answers exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from models.contracts import Classification
from models.tuning import TuningOptions, load_tuned_classifier, tune_classifier
from models.tuning.adapter import read_manifest, tuned_version
from tests.fixtures.serve import TinyModels
from tests.unit.test_models_tuning import _records

pytestmark = pytest.mark.integration

APP = "adapters"
# Enough to move the answers; seconds on 2 cores.
OPTIONS = TuningOptions(
    rank=4, alpha=16, dropout=0.0, steps=3, learning_rate=5e-2, batch_size=4, warmup=0,
    kinds=("A",), max_pixels=64 * 28 * 28, eval_examples=4, device="cpu",
)  # fmt: skip
Distributions = list[dict[str, float]]


@dataclass(frozen=True)
class Adapters:
    base: Path
    first: Path  # tuned with seed 0, as save_adapter wrote it
    published: Path  # `first` published by app.learning.publish (a copy with its manifest)
    second: Path  # seed 1
    crops: list[Image.Image]


@pytest.fixture(scope="module")
def adapters(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Adapters:
    from dataclasses import replace

    from app.learning.publish import publish_model
    from models.classifier import QwenClassifier

    root = tmp_path_factory.mktemp("adapters")
    base = tiny_models.classifier_dir
    questionnaire = QwenClassifier.load(base).questionnaire
    records = _records(root, questionnaire.step1().text, questionnaire.prompt_set.system)
    tuned = {}
    for seed in (0, 1):
        out = root / "tuned" / f"seed-{seed}"
        tune_classifier(base, records, images_root=root, out_dir=out,
                        options=replace(OPTIONS, seed=seed))  # fmt: skip
        tuned[seed] = out
    published, _ = publish_model(tuned[0], str(root / "published"), "classifier-adapters")
    # Two of the crops tuned on (a stain and a hole): enough to tell the adapters apart.
    crops = [Image.open(root / f"crop-{i}.png").convert("RGB") for i in range(2)]
    return Adapters(base, tuned[0], Path(published), tuned[1], crops)


def _distributions(classifications: list[Classification]) -> Distributions:
    return [c.type_distribution for c in classifications]


def test_a_published_adapter_verifies_and_swaps_in_place(
    adapters: Adapters, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """AdapterSwitch on one loaded base: each adapter answers as a freshly tuned classifier
    with it does, and taking the adapter off gives back the base's exact answers."""
    from app.learning.publish import publish_model
    from models.classifier import QwenClassifier
    from models.model_store import MANIFEST as STORE_MANIFEST
    from models.model_store import s3_client
    from models.tuning.adapter import AdapterSwitch, resolve_adapter_dir

    monkeypatch.setenv("LOUPE_S3_ENDPOINT_URL", s3_endpoint)
    s3_client().create_bucket(Bucket="adapters")
    uri, _ = publish_model(adapters.first, "s3://adapters/models", "classifier-adapters")
    fetched = resolve_adapter_dir(uri, tmp_path / "cache")
    assert (fetched / STORE_MANIFEST).is_file() and (adapters.published / STORE_MANIFEST).is_file()
    # Both copies carry the store's manifest beside the adapter's, and still verify.
    manifest = read_manifest(adapters.first)
    assert read_manifest(fetched) == read_manifest(adapters.published) == manifest

    crops = adapters.crops
    expected = {
        path: _distributions(load_tuned_classifier(adapters.base, path).classify(crops))
        for path in (adapters.first, adapters.second)
    }
    classifier = QwenClassifier.load(adapters.base)
    base_version, base = classifier.version, _distributions(classifier.classify(crops))
    switch = AdapterSwitch(classifier)

    switch.switch(fetched)
    assert (
        classifier.version
        == manifest["version"]
        == tuned_version(base_version, manifest["content_hash"])
    )
    assert _distributions(classifier.classify(crops)) == expected[adapters.first]
    switch.switch(adapters.second)
    assert classifier.version == read_manifest(adapters.second)["version"]
    assert _distributions(classifier.classify(crops)) == expected[adapters.second]
    switch.switch(None)
    assert classifier.version == base_version
    assert _distributions(classifier.classify(crops)) == base  # exactly the base again
    switch.switch(resolve_adapter_dir(f"file://{adapters.published}"))  # on again, from none
    assert _distributions(classifier.classify(crops)) == expected[adapters.first]


def test_the_serving_plan_carries_each_arms_adapter(db_session: Any, adapters: Adapters) -> None:
    from app.registry import experiments
    from app.registry.serving import serving_plan
    from tests.integration.review_support import register_version

    base = _register(db_session, "cls-base", adapters.base, None)
    experiments.move_alias(session=db_session, alias="champion", version=base, actor_id=None,
                           why="first classifier")  # fmt: skip
    plan = serving_plan(db_session)
    assert plan is not None
    assert (plan["classifier_adapter"], plan["challenger_classifier_adapter"]) == (None, None)

    tuned = _register(db_session, "cls-base+lora", adapters.base, adapters.published)
    experiments.stage_challenger(session=db_session, candidate=tuned, share=0.5, actor_id=None)
    plan = serving_plan(db_session)
    assert plan is not None
    assert plan["classifier_dir"] == plan["challenger_classifier_dir"] == str(adapters.base)
    assert plan["classifier_adapter"] is None
    assert plan["challenger_classifier_adapter"] == str(adapters.published)

    # A detector experiment: the challenger arm keeps the champion's classifier, adapter too.
    experiments.promote(session=db_session, actor_id=None)
    detector = register_version(db_session, "detector", "det-1")
    experiments.move_alias(session=db_session, alias="champion", version=detector,
                           actor_id=None, why="first detector")  # fmt: skip
    candidate = register_version(db_session, "detector", "det-2")
    experiments.stage_challenger(session=db_session, candidate=candidate, share=0.1,
                                 actor_id=None)  # fmt: skip
    plan = serving_plan(db_session)
    assert plan is not None
    assert plan["classifier_adapter"] == plan["challenger_classifier_adapter"]
    assert plan["classifier_adapter"] == str(adapters.published)


def _register(session: Any, name: str, base: Path, adapter: Path | None) -> Any:
    """A classifier version whose gate passed: the base alone, or the base and an adapter
    (a row is immutable once written, so the adapter is in it from the start)."""
    from app.registry.tables import ModelVersion
    from tests.integration.review_support import GATE_PASSED

    version = ModelVersion(
        kind="classifier", version=name, uri=str(base), content_hash=name.ljust(64, "0")[:64],
        metrics={"accuracy": 0.9}, gate=GATE_PASSED, adapter_uri=str(adapter) if adapter else None,
    )  # fmt: skip
    session.add(version)
    session.flush()
    return version


def test_serve_loads_adapters_per_arm_and_swaps_them_live(
    db_session: Any, adapters: Adapters, cold_start_url: str
) -> None:
    """The registry's champion (the base alone) and tuned challenger (the same base and an
    adapter) reach a Serve app through the runner, as the Serve process follows them; then
    the challenger's adapter is swapped and taken off by user_config alone."""
    from ray import serve

    from app.registry import experiments
    from app.registry.serving import serving_plan
    from models.serve import runner

    champion = _register(db_session, "cls-base", adapters.base, None)
    experiments.move_alias(session=db_session, alias="champion", version=champion,
                           actor_id=None, why="first classifier")  # fmt: skip
    tuned = _register(db_session, "cls-base+lora", adapters.base, adapters.published)
    experiments.stage_challenger(session=db_session, candidate=tuned, share=0.5, actor_id=None)
    options: dict[str, Any] = {
        "detector_dir": "", "classifier_dir": "/not/used", "app_name": APP,
        "route_prefix": f"/{APP}",
        # Beside the session's apps on 2 CPUs: the tiny classifiers need no reservation.
        "actor_options": {"num_cpus": 0},
    }  # fmt: skip
    configured = {key: options.get(key) for key in runner.FOLLOWED}
    # The session's cold-start app: the same base on its own, with no challenger at all.
    alone = _ask("Classifier", adapters.crops, app="cold-start")
    base_version = read_manifest(adapters.first)["base_version"]
    assert {v["classifier_version"] for v in alone[1]} == {base_version}
    try:
        applied = runner._follow_once(
            lambda: serving_plan(db_session), options, configured, dict(configured)
        )
        assert applied["classifier_dir"] == str(adapters.base)
        assert applied["challenger_classifier_adapter"] == str(adapters.published)

        challenger = _ask("ChallengerClassifier", adapters.crops)
        assert {v["classifier_version"] for v in challenger[1]} == {
            read_manifest(adapters.first)["version"]
        }
        assert challenger[0] != alone[0]  # the adapter answers
        # Same answers and versions as the base alone: the challenger changes nothing here.
        assert _ask("Classifier", adapters.crops) == alone
        handle = serve.get_deployment_handle("ChallengerClassifier", app_name=APP)
        reason = handle.explain.remote((adapters.crops[0], ("stain", "minor", "stain"), "en"))
        assert isinstance(reason.result(), str)

        # A second adapter on the same base: the live replica swaps it in place.
        batches = len(handle.batch_sizes.remote().result()["classify"])
        runner.deploy(**{**applied, **_settings(options),
                         "challenger_classifier_adapter": str(adapters.second)})  # fmt: skip
        second = _ask("ChallengerClassifier", adapters.crops)
        assert {v["classifier_version"] for v in second[1]} == {
            read_manifest(adapters.second)["version"]
        }
        assert second[0] != challenger[0]
        # Taken off: the base's version and exactly the base's answers.
        runner.deploy(**{**applied, **_settings(options), "challenger_classifier_adapter": None})
        assert _ask("ChallengerClassifier", adapters.crops) == alone
        # The same replica all along: its record of batches was not reset by a restart.
        assert len(handle.batch_sizes.remote().result()["classify"]) > batches
        assert _ask("Classifier", adapters.crops) == alone
    finally:
        serve.delete(APP)


def _settings(options: dict[str, Any]) -> dict[str, Any]:
    from models.serve.runner import FOLLOWED

    return {k: v for k, v in options.items() if k not in FOLLOWED}


def _ask(
    deployment: str, crops: list[Image.Image], app: str = APP
) -> tuple[Distributions, list[dict[str, str]]]:
    """Each crop on its own (batches of one: the same numbers in any replica)."""
    from ray import serve

    handle = serve.get_deployment_handle(deployment, app_name=app)
    answers = [handle.classify.remote(crop).result() for crop in crops]
    return [c.type_distribution for c, _, _ in answers], [v for _, v, _ in answers]
