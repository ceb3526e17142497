"""LoRA tuning of the tiny classifier on exported instruction records (models/tuning).

One tuning run (module fixture, fp32 on CPU, the production code path) on a handful of
kind-A records written by the exporter's own `chat_record`, with the production step-1
question: the answer loss falls, only the language model's LoRA weights learn, the labels
mask all but the answer, the saved adapter loads back onto the base with the same logits,
and the production classifier scores with it.

The tiny model's random LM head caps how far the loss can fall (its logits span about
±1.3, so the NLL cannot go far below ln(vocab) − 1): the assertions ask for a clear fall,
not a low loss.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image, ImageDraw

from app.instructions.export import chat_record
from models.classifier import QwenClassifier
from models.qwen_batch import expand_image_tokens
from models.tiny import build_tiny_classifier
from models.tuning import Tuned, TuningOptions, load_tuned_classifier, tune_classifier
from models.tuning.adapter import MANIFEST, AdapterMismatch, attach_adapter, read_manifest
from models.tuning.data import IGNORE, Batch, ChatExample, chat_examples, collate
from models.tuning.lora import lora_model

MAX_PIXELS = 64 * 28 * 28
COLOURS = {"stain": (120, 80, 40), "hole": (10, 10, 10), "pilling": (230, 230, 230),
           "normal": (70, 90, 140)}  # fmt: skip
OPTIONS = TuningOptions(
    rank=8, alpha=16, dropout=0.0, steps=20, learning_rate=2e-2, batch_size=4, warmup=2,
    kinds=("A",), max_pixels=MAX_PIXELS, eval_examples=8, device="cpu",
)  # fmt: skip
SNAPSHOT = "77a7cc5f"


@dataclass(frozen=True)
class Run:
    base: Path
    adapter: Path
    root: Path
    records: list[dict[str, Any]]
    tuned: Tuned
    manifest: dict[str, Any]
    vision_before: torch.Tensor


def _crop(path: Path, colour: tuple[int, int, int]) -> None:
    image = Image.new("RGB", (56, 56), COLOURS["normal"])
    ImageDraw.Draw(image).ellipse((14, 14, 42, 42), fill=colour)
    image.save(path)


def _records(root: Path, question: str, system: str) -> list[dict[str, Any]]:
    """Two crops per label as kind A (the step-1 question) and two kind-B distractors."""
    manifest = {"system": {"en": system}}
    records = []
    for i, label in enumerate([*COLOURS, *COLOURS]):
        _crop(root / f"crop-{i}.png", COLOURS[label])
        example = {"id": f"a{i}", "kind": "A", "form": "type", "language": "en",
                   "defect_type": label, "user": question, "assistant": label}  # fmt: skip
        records.append(chat_record(manifest, SNAPSHOT, example, f"crop-{i}.png"))
    for i in range(2):
        example = {"id": f"b{i}", "kind": "B", "form": "pair", "language": "en",
                   "defect_type": "pilling", "user": "Is this pilling or lint?",
                   "assistant": "pilling"}  # fmt: skip
        records.append(chat_record(manifest, SNAPSHOT, example, f"crop-{i}.png"))
    return records


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("tuning")
    base = build_tiny_classifier(root / "classifier")
    plain = QwenClassifier.load(base, max_pixels=MAX_PIXELS)
    q = plain.questionnaire
    records = _records(root, q.step1().text, q.prompt_set.system)
    vision = plain.model.model.visual.blocks[0].mlp.gate_proj.weight.detach().clone()
    adapter = root / "adapter"
    tuned, manifest = tune_classifier(
        base, records, images_root=root, out_dir=adapter, options=OPTIONS
    )
    return Run(base, adapter, root, records, tuned, manifest, vision)


def test_tuning_lowers_the_answer_token_loss(run: Run) -> None:
    before, after = run.tuned.loss_before, run.tuned.loss_after
    assert len(run.tuned.losses) == OPTIONS.steps
    assert after < 0.9 * before, (before, after)
    assert run.tuned.examples == 8 and run.tuned.kinds == ["A"]  # kind B left out
    assert (run.tuned.device, run.tuned.dtype) == ("cpu", "float32")


def test_only_the_language_models_lora_weights_learn(run: Run) -> None:
    model = run.tuned.model
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    # 2 layers x (q, k, v, o, gate, up, down) x (A, B)
    assert len(trainable) == 2 * 7 * 2
    assert all(".language_model.layers." in n and ".lora_" in n for n in trainable)
    adapted = [name for name, _ in model.named_modules() if name.endswith(".lora_A")]
    assert not [name for name in adapted if ".visual." in name]
    assert any(name.endswith("mlp.gate_proj.lora_A") for name in adapted)  # language MLP
    vision = model.get_base_model().model.visual.blocks[0].mlp
    assert type(vision.gate_proj) is torch.nn.Linear  # not wrapped
    assert torch.equal(vision.gate_proj.weight, run.vision_before)


def test_labels_mask_everything_but_the_answer(run: Run) -> None:
    processor = run.tuned.processor
    examples = chat_examples(run.records[:2], run.root)
    batch = collate(processor, examples, MAX_PIXELS)
    tokenizer = processor.tokenizer
    for row, example in enumerate(examples):
        labels = batch.labels[row]
        kept = labels[labels != IGNORE].tolist()
        assert tokenizer.decode(kept) == example.answer + "<|im_end|>"
        # The answer tokens are the row's last real tokens: nothing after them is learnt.
        length = int(batch.attention_mask[row].sum())
        assert batch.input_ids[row, length - len(kept) : length].tolist() == kept
        assert (labels[: length - len(kept)] == IGNORE).all()


def test_the_prompt_is_the_one_the_production_classifier_scores(run: Run) -> None:
    classifier = QwenClassifier.load(run.base, max_pixels=MAX_PIXELS)
    example = chat_examples(run.records[:1], run.root)[0]
    batch = collate(run.tuned.processor, [example], MAX_PIXELS)
    # What the classifier's prefill and question feed the model for this crop.
    images = classifier.processor.image_processor
    grid = images(images=[Image.open(example.images[0])])["image_grid_thw"]
    count = int(grid[0].prod()) // images.merge_size**2
    prefix = expand_image_tokens(classifier._prefix_text, "<|image_pad|>", [count])
    question = classifier._question_text.replace("\x00question\x00", example_question(example))
    tokenizer = classifier.processor.tokenizer
    scored = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    scored += tokenizer(question, add_special_tokens=False)["input_ids"]
    prompt_length = int((batch.labels[0] == IGNORE).sum())  # one row: no padding
    assert batch.input_ids[0, :prompt_length].tolist() == scored


def example_question(example: ChatExample) -> str:
    return str(example.prompt[-1]["content"][-1]["text"])


def test_saved_adapter_loads_onto_the_base_with_the_same_logits(run: Run) -> None:
    manifest = read_manifest(run.adapter)
    assert manifest == run.manifest
    assert manifest["snapshot"] == SNAPSHOT and manifest["kinds"] == ["A"]
    assert (manifest["rank"], manifest["alpha"], manifest["steps"]) == (8, 16, 20)
    assert manifest["target_modules"] == OPTIONS.target_modules
    assert manifest["losses"]["after"] == run.tuned.loss_after
    assert len(manifest["losses"]["steps"]) == 20
    assert {p.name for p in run.adapter.iterdir()} == {
        "adapter_config.json", "adapter_model.safetensors", MANIFEST,
    }  # fmt: skip

    loaded = load_tuned_classifier(run.base, run.adapter, max_pixels=MAX_PIXELS)
    assert loaded.version == manifest["version"] and "+lora-" in loaded.version
    batch = collate(run.tuned.processor, chat_examples(run.records[:4], run.root), MAX_PIXELS)
    image_token = int(loaded.model.config.image_token_id)
    with torch.inference_mode():
        expected = run.tuned.model(**_inputs(batch, image_token)).logits
        got = loaded.model(**_inputs(batch, image_token)).logits
        base = QwenClassifier.load(run.base).model(**_inputs(batch, image_token)).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(base, expected, atol=1e-3)  # the adapter does change them


def _inputs(batch: Batch, image_token_id: int) -> dict[str, torch.Tensor]:
    """A plain forward's inputs; the image-token types let the model place its 3D positions."""
    return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
            "pixel_values": batch.pixel_values, "image_grid_thw": batch.image_grid_thw,
            "mm_token_type_ids": (batch.input_ids == image_token_id).long()}  # fmt: skip


def test_modules_trained_in_full_are_saved_and_load_back_with_the_same_logits(
    run: Run, tmp_path: Path
) -> None:
    """trainable_modules, for a base whose merger and LM head never saw such crops (the
    tiny one): they learn in full, the vision blocks stay frozen, the adapter carries them."""
    options = replace(OPTIONS, steps=3, trainable_modules=("merger", "lm_head"))
    adapter = tmp_path / "full-adapter"
    tuned, manifest = tune_classifier(
        run.base, run.records, images_root=run.root, out_dir=adapter, options=options
    )
    assert manifest["trainable_modules"] == ["merger", "lm_head"]
    assert read_manifest(adapter) == manifest
    trainable = [name for name, p in tuned.model.named_parameters() if p.requires_grad]
    assert not [name for name in trainable if ".visual.blocks." in name]
    base = QwenClassifier.load(run.base).model
    inside = tuned.model.get_base_model()
    for before, wrapper in ((base.model.visual.merger, inside.model.visual.merger),
                            (base.lm_head, inside.lm_head)):  # fmt: skip
        after = wrapper.modules_to_save["default"].state_dict()
        assert any(not torch.equal(v, after[k]) for k, v in before.state_dict().items())

    loaded = load_tuned_classifier(run.base, adapter, max_pixels=MAX_PIXELS)
    batch = collate(run.tuned.processor, chat_examples(run.records[:4], run.root), MAX_PIXELS)
    image_token = int(loaded.model.config.image_token_id)
    with torch.inference_mode():
        expected = tuned.model(**_inputs(batch, image_token)).logits
        got = loaded.model(**_inputs(batch, image_token)).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="matched no module"):
        lora_model(base, replace(OPTIONS, trainable_modules=("no_such_module",)), False)


def test_tuned_adapter_raises_the_inspectors_label_in_scoring(run: Run) -> None:
    crops = [Image.open(run.root / f"crop-{i}.png") for i in range(len(COLOURS))]
    labels = list(COLOURS)
    plain = QwenClassifier.load(run.base, max_pixels=MAX_PIXELS).classify(crops)
    tuned = load_tuned_classifier(run.base, run.adapter, max_pixels=MAX_PIXELS).classify(crops)
    before = sum(c.type_distribution[label] for c, label in zip(plain, labels, strict=True))
    after = sum(c.type_distribution[label] for c, label in zip(tuned, labels, strict=True))
    assert after > before, (before, after)


def test_a_changed_adapter_or_another_base_is_refused(run: Run, tmp_path: Path) -> None:
    with pytest.raises(AdapterMismatch, match="tuned on"):
        attach_adapter(QwenClassifier.load(run.base).model, run.adapter, "other-base-1234")
    copy = tmp_path / "adapter"
    copy.mkdir()
    for path in run.adapter.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    config = json.loads((copy / "adapter_config.json").read_text())
    (copy / "adapter_config.json").write_text(json.dumps({**config, "r": 4}))
    with pytest.raises(AdapterMismatch, match="content hash"):
        read_manifest(copy)
    with pytest.raises(FileExistsError):
        tune_classifier(run.base, run.records, images_root=run.root, out_dir=run.adapter,
                        options=OPTIONS)  # fmt: skip


def test_the_cli_tunes_from_an_exported_file(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from models.tuning.__main__ import main

    jsonl = run.root / "train.jsonl"  # the crops are named relative to it, as exported
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in run.records), encoding="utf-8")
    out = tmp_path / "cli-adapter"
    main([str(jsonl), "--base", str(run.base), "--out", str(out), "--kinds", "B",
          "--steps", "2", "--rank", "4", "--batch-size", "2", "--max-pixels", str(MAX_PIXELS),
          "--device", "cpu"])  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed == {**read_manifest(out), "losses": printed["losses"]}
    assert printed["kinds"] == ["B"] and printed["examples"] == 2 and printed["rank"] == 4
    assert printed["snapshot"] == SNAPSHOT  # taken from the records
    assert "steps" not in printed["losses"]
