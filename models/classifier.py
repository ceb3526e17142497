"""Qwen2.5-VL defect classifier: a region crop in, defect type, severity and reason out.

Type and severity come from scoring the allowed answers (the log-likelihood of each
answer's tokens after the prompt), never from parsing free text: the answer is always a
taxonomy key and the softmax over answers is a probability the routing policy can use.
Only the one-sentence reason is generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import Qwen2_5_VLForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutputWithPooling

from models.contracts import Classification
from models.images import DEFAULT_MAX_PIXELS, fit_pixel_budget
from models.loading import model_version, resolve_model_dir
from models.prompts import Prompts, load_prompts
from models.qwen_processor import ImageOnlyQwen2_5_VLProcessor
from models.scoring import (
    answer_log_likelihoods,
    best_choice,
    choice_distribution,
    first_sentence,
)
from models.taxonomy import Taxonomy, load_taxonomy

# Scoring "label<|im_end|>" rather than "label" asks for the complete answer: without the
# end token a label that is a prefix of another (e.g. "hole" / "holes") would win both.
_ANSWER_END = "<|im_end|>"


@dataclass
class _EncodedCrop:
    """A crop's vision features, computed once and reused by every question about it."""

    image: Image.Image
    image_grid_thw: torch.Tensor
    features: tuple[torch.Tensor, ...]


class QwenClassifier:
    """Implements the `Classifier` protocol with any Qwen2.5-VL checkpoint directory."""

    def __init__(
        self,
        model_dir: str | Path,
        taxonomy: Taxonomy | None = None,
        prompts: Prompts | None = None,
        language: str = "en",
        device: str = "cpu",
        reason_max_new_tokens: int = 24,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        dtype: str | torch.dtype = "auto",
    ) -> None:
        self.model_dir = resolve_model_dir(str(model_dir))
        self.version = model_version(self.model_dir)
        self.taxonomy = taxonomy or load_taxonomy()
        prompts = prompts or load_prompts()
        self.prompt_version = prompts.version
        self.language = language
        self.prompts = prompts.for_language(language)
        self.reason_max_new_tokens = reason_max_new_tokens
        self.max_pixels = max_pixels
        self.device = torch.device(device)
        self.processor = ImageOnlyQwen2_5_VLProcessor.from_pretrained(self.model_dir)
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(self.model_dir, dtype=dtype)
        self.model = model.to(self.device).eval()
        self._answer_tokens: dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def classify(
        self, crops: list[Image.Image], *, with_reason: bool = True
    ) -> list[Classification]:
        return [self.classify_crop(crop, with_reason=with_reason) for crop in crops]

    def classify_crop(self, crop: Image.Image, *, with_reason: bool = True) -> Classification:
        """Step 1 of the design: defect type, then severity, then (optionally) the reason."""
        encoded = self._encode(crop)
        types = self._ask(encoded, self._type_question(), self.taxonomy.type_keys)
        defect_type, type_probability = best_choice(types)
        # Asked even for "normal": routing ignores a normal region's severity, but a scored
        # distribution is evidence, whereas a made-up one would mislead calibration.
        question = self._severity_question(defect_type)
        severities = self._ask(encoded, question, self.taxonomy.severity_keys)
        severity, severity_probability = best_choice(severities)
        reason = self.reason(encoded.image, defect_type, severity) if with_reason else ""
        return Classification(
            defect_type=defect_type,
            type_probability=type_probability,
            severity=severity,
            severity_probability=severity_probability,
            type_distribution=types,
            severity_distribution=severities,
            reason=reason,
        )

    def score_choices(
        self, image: Image.Image, prompt: str, choices: Sequence[str]
    ) -> dict[str, float]:
        """P(answer | image, prompt) over the allowed answers (sums to 1)."""
        return self._ask(self._encode(image), prompt, list(choices))

    def reason(self, image: Image.Image, defect_type: str, severity: str) -> str:
        """One sentence of visible evidence, generated greedily, for a human reader."""
        label = self.taxonomy.defect_type(defect_type).name(self.language)
        level = self.taxonomy.severity(severity).name(self.language)
        prompt = self.prompts.reason.format(defect_type=label, severity=level)
        inputs = self._inputs(fit_pixel_budget(image, self.max_pixels), prompt)
        with torch.inference_mode():
            generated = self.model.generate(
                **inputs, max_new_tokens=self.reason_max_new_tokens, do_sample=False
            )
        new_tokens = generated[0, inputs["input_ids"].shape[1] :]
        text = self.processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
        return first_sentence(text)

    def _type_question(self) -> str:
        choices = self.prompts.choices_text(self.taxonomy.defect_types, self.language)
        return self.prompts.type_question.format(choices=choices)

    def _severity_question(self, defect_type: str) -> str:
        label = self.taxonomy.defect_type(defect_type).name(self.language)
        choices = self.prompts.choices_text(self.taxonomy.severities, self.language)
        return self.prompts.severity_question.format(choices=choices, defect_type=label)

    def _encode(self, crop: Image.Image) -> _EncodedCrop:
        image = fit_pixel_budget(crop.convert("RGB"), self.max_pixels)
        pixels = self.processor.image_processor(images=[image], return_tensors="pt")
        grid = pixels["image_grid_thw"].to(self.device)
        with torch.inference_mode():
            output = self.model.model.get_image_features(
                pixels["pixel_values"].to(self.device), grid, return_dict=True
            )
        return _EncodedCrop(image=image, image_grid_thw=grid, features=tuple(output.pooler_output))

    def _ask(self, encoded: _EncodedCrop, prompt: str, choices: list[str]) -> dict[str, float]:
        """Scores every answer in one batched forward pass, the crop encoded once."""
        # The processor still sees the image: it decides how many placeholder tokens to insert.
        prompt_inputs = self._inputs(encoded.image, prompt, with_pixels=False)
        answer_ids, answer_mask = self._answers(tuple(choices))
        batch = _answer_batch(prompt_inputs, answer_ids, answer_mask)
        count = len(choices)
        # The vision tower is the costly part for a large image; all rows share its output.
        encoder_outputs = {
            "image": BaseModelOutputWithPooling(pooler_output=encoded.features * count)
        }
        with torch.inference_mode():
            logits = self.model(
                **batch,
                image_grid_thw=encoded.image_grid_thw.repeat(count, 1),
                mm_encoder_outputs=encoder_outputs,
                logits_to_keep=answer_ids.shape[1] + 1,
            ).logits
        # The kept logits start one position before the first answer token.
        scores = answer_log_likelihoods(logits[:, :-1], answer_ids, answer_mask)
        return choice_distribution(choices, scores.tolist())

    def _inputs(self, image: Image.Image, prompt: str, with_pixels: bool = True) -> dict[str, Any]:
        messages = [
            {"role": "system", "content": [{"type": "text", "text": self.prompts.system}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]},
        ]
        text = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        inputs = self.processor(text=[text], images=[image], return_tensors="pt")
        if not with_pixels:
            inputs.pop("pixel_values")
        return {key: value.to(self.device) for key, value in inputs.items()}

    def _answers(self, choices: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded token ids of each answer (cached: the choices rarely change)."""
        if choices not in self._answer_tokens:
            tokenizer = self.processor.tokenizer
            ids = [
                tokenizer(choice + _ANSWER_END, add_special_tokens=False)["input_ids"]
                for choice in choices
            ]
            width = max(len(row) for row in ids)
            answer_ids = torch.full((len(ids), width), tokenizer.pad_token_id or 0)
            answer_mask = torch.zeros((len(ids), width), dtype=torch.long)
            for i, row in enumerate(ids):
                answer_ids[i, : len(row)] = torch.tensor(row)
                answer_mask[i, : len(row)] = 1
            self._answer_tokens[choices] = (answer_ids.to(self.device), answer_mask.to(self.device))
        return self._answer_tokens[choices]


def _answer_batch(
    prompt_inputs: dict[str, torch.Tensor], answer_ids: torch.Tensor, answer_mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """One row per answer: the same prompt followed by that answer, right-padded.

    Right padding keeps every row's prompt at the same positions, so the answer tokens
    start at the same index in all rows and the 3D rotary positions of the image agree.
    """
    count = answer_ids.shape[0]
    prompt_ids = prompt_inputs["input_ids"].repeat(count, 1)
    prompt_mask = prompt_inputs["attention_mask"].repeat(count, 1)
    prompt_types = prompt_inputs["mm_token_type_ids"].repeat(count, 1)
    return {
        "input_ids": torch.cat([prompt_ids, answer_ids], dim=1),
        "attention_mask": torch.cat([prompt_mask, answer_mask], dim=1),
        # Answer tokens are text (type 0); only the image placeholders are type 1.
        "mm_token_type_ids": torch.cat([prompt_types, torch.zeros_like(answer_ids)], dim=1),
    }
