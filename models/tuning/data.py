"""Instruction examples as the classifier reads them: chat records in, training tensors out.

A record is one line of `loupe instructions export` (chat format: `messages` with the
system turn, the user turn holding the crop's image and the question, the assistant turn
holding the answer; `images` relative to the JSONL file). Everything before the last
assistant turn is the prompt, and the prompt is rendered exactly as the production
classifier renders it for scoring: the processor's chat template with image items reduced
to `{"type": "image"}` and the generation prompt appended, the crop fitted to the same
pixel budget. The answer is tokenized on its own, followed by `<|im_end|>`, which is what
constrained-choice scoring scores (models/classifier.py): training and scoring then see
the same token sequence, so lowering this loss raises the right choice's score.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from models.classifier import _ANSWER_END as ANSWER_END  # the scorer's end-of-answer token
from models.images import fit_pixel_budget
from models.qwen_batch import expand_image_tokens, right_pad
from models.qwen_processor import ImageOnlyQwen2_5_VLProcessor

IGNORE = -100  # the label of every token the loss must not see


@dataclass(frozen=True)
class ChatExample:
    """One training example: the prompt turns, the answer and the images, in order."""

    id: str
    kind: str
    language: str
    prompt: tuple[dict[str, Any], ...]  # every turn before the answer
    answer: str
    images: tuple[Path, ...]


@dataclass(frozen=True)
class Batch:
    """Right-padded rows; `labels` holds the answer tokens and IGNORE everywhere else."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor
    image_grid_thw: torch.Tensor

    def to(self, device: torch.device | str, dtype: torch.dtype) -> Batch:
        return Batch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.labels.to(device),
            self.pixel_values.to(device, dtype),
            self.image_grid_thw.to(device),
        )


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of an exported JSONL file (their image paths are relative to it)."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def chat_examples(
    records: Iterable[dict[str, Any]], images_root: str | Path, kinds: Sequence[str] | None = None
) -> list[ChatExample]:
    """Records as examples, keeping only `kinds` when given (A, B, C, D)."""
    root = Path(images_root)
    wanted = set(kinds) if kinds else None
    examples = []
    for record in records:
        kind = str(record.get("kind", ""))
        if wanted is None or kind in wanted:
            examples.append(_example(record, root))
    return examples


def _example(record: dict[str, Any], root: Path) -> ChatExample:
    messages = list(record["messages"])
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError(f"example {record.get('id')!r} does not end with the assistant's answer")
    answer = "".join(
        item.get("text", "") for item in _content(messages[-1]) if item.get("type") == "text"
    )
    if not answer.strip():
        raise ValueError(f"example {record.get('id')!r} has an empty answer")
    named = [
        item["image"]
        for message in messages[:-1]
        for item in _content(message)
        if item.get("type") == "image" and isinstance(item.get("image"), str)
    ]
    # The export names each image in its content item and lists them in `images` too;
    # other trainers' files often only have the list.
    paths = named or list(record.get("images", []))
    turns = tuple(_strip_images(message) for message in messages[:-1])
    if len(paths) != sum(_image_count(turn) for turn in turns):
        raise ValueError(f"example {record.get('id')!r}: images do not match the image turns")
    return ChatExample(
        id=str(record.get("id", "")),
        kind=str(record.get("kind", "")),
        language=str(record.get("language", "")),
        prompt=turns,
        answer=answer,
        images=tuple(root / path for path in paths),
    )


def _content(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _strip_images(message: dict[str, Any]) -> dict[str, Any]:
    """The turn as the classifier builds it: an image item carries no path."""
    items = [{"type": "image"} if i.get("type") == "image" else i for i in _content(message)]
    return {"role": message["role"], "content": items}


def _image_count(message: dict[str, Any]) -> int:
    return sum(1 for item in message["content"] if item.get("type") == "image")


def render_prompt(processor: ImageOnlyQwen2_5_VLProcessor, example: ChatExample) -> str:
    """The prompt text up to and including `<|im_start|>assistant\\n`, as scored."""
    return processor.apply_chat_template(
        list(example.prompt), add_generation_prompt=True, tokenize=False
    )


def answer_ids(processor: ImageOnlyQwen2_5_VLProcessor, answer: str) -> list[int]:
    tokens = processor.tokenizer(answer + ANSWER_END, add_special_tokens=False)["input_ids"]
    return list(tokens)


def collate(
    processor: ImageOnlyQwen2_5_VLProcessor, examples: Sequence[ChatExample], max_pixels: int
) -> Batch:
    """Tokenizes prompts with their images and appends the answers; masks all but answers.

    The image placeholders are expanded to each image's grid and the text tokenized as
    the classifier's prefill does it (its prefix ends at `<|vision_end|>`, a special
    token, so tokenizing prefix and question apart or together gives the same ids).
    """
    images = [
        fit_pixel_budget(Image.open(path).convert("RGB"), max_pixels)
        for example in examples
        for path in example.images
    ]
    pixels = processor.image_processor(images=images, return_tensors="pt")
    merge = processor.image_processor.merge_size
    counts = (pixels["image_grid_thw"].prod(-1) // merge**2).tolist()
    rows, label_rows, start = [], [], 0
    for example in examples:
        used = len(example.images)
        text = expand_image_tokens(
            render_prompt(processor, example), processor.image_token, counts[start : start + used]
        )
        start += used
        prompt_ids = list(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
        answer = answer_ids(processor, example.answer)
        rows.append(prompt_ids + answer)
        label_rows.append([IGNORE] * len(prompt_ids) + answer)
    pad_id = int(processor.tokenizer.pad_token_id or 0)
    input_ids, mask = right_pad(rows, pad_id)
    labels, _ = right_pad(label_rows, IGNORE)
    return Batch(input_ids, mask, labels, pixels["pixel_values"], pixels["image_grid_thw"])
