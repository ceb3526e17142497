"""Qwen2.5-VL defect classifier: region crops in, two-step classifications out.

Labels, severities and exception answers come from scoring the allowed answers (the
log-likelihood of each answer's tokens after the prompt), never from parsing free text:
the answer is always one of the allowed keys and the softmax over answers is a
probability the routing policy can use. Only the one-sentence reason is generated, and
only when asked for (`explain`), because generation is the expensive part.

A batch of crops is scored together: each crop's prefix (system, few-shot examples, the
crop) is read once and cached, then every question continues that cache, and every
answer continues its question's cache (models/qwen_batch.py). Step 2's questions
continue the crop's prefix, not step 1's question, so they never see step 1's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import DynamicCache, Qwen2_5_VLForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutputWithPooling

from models import two_step
from models.contracts import Classification
from models.exceptions import ExceptionSet, load_exceptions
from models.images import DEFAULT_MAX_PIXELS, fit_pixel_budget
from models.loading import model_version, resolve_model_dir
from models.prompts import Prompts, load_prompts
from models.qwen_batch import (
    continued_positions,
    expand_image_tokens,
    left_pad,
    next_positions,
    right_pad,
    select_rows,
)
from models.qwen_processor import ImageOnlyQwen2_5_VLProcessor
from models.scoring import answer_log_likelihoods, choice_distribution, first_sentence
from models.taxonomy import Taxonomy, load_taxonomy
from models.two_step import Question, Questionnaire

# Scoring "label<|im_end|>" rather than "label" asks for the complete answer: without the
# end token a label that is a prefix of another (e.g. "hole" / "holes") would win both.
_ANSWER_END = "<|im_end|>"
_QUESTION_SLOT = "\x00question\x00"


@dataclass
class _Prefix:
    """The cached prefix of every crop in a batch, and where each row continues."""

    cache: DynamicCache
    mask: torch.Tensor  # (crops, prefix length)
    next_position: torch.Tensor  # (crops,)


class QwenClassifier:
    """Implements the `Classifier` protocol with any Qwen2.5-VL model and processor."""

    def __init__(
        self,
        model: Qwen2_5_VLForConditionalGeneration,
        processor: ImageOnlyQwen2_5_VLProcessor,
        *,
        version: str,
        questionnaire: Questionnaire,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        reason_max_new_tokens: int = 32,
        temperature: float = 1.0,
    ) -> None:
        self.model = model.eval()
        # Fitted per model version on verified crops (models.calibration); 1.0 is unscaled.
        self.temperature = temperature
        self.processor = processor
        self.version = version
        self.questionnaire = questionnaire
        self.max_pixels = max_pixels
        self.reason_max_new_tokens = reason_max_new_tokens
        self.device = model.device
        self._tokenizer = processor.tokenizer
        self._pad_id = int(self._tokenizer.pad_token_id or 0)
        # Few-shot images cost tokens on every crop: they get the crops' pixel budget.
        examples = [Image.open(e.image_path).convert("RGB") for e in questionnaire.prompts.examples]
        self._examples = [fit_pixel_budget(example, max_pixels) for example in examples]
        self._prefix_text, self._question_text = self._templates()
        self._answer_ids: dict[str, list[int]] = {}
        self._questionnaires = {questionnaire.language: questionnaire}

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        language: str = "en",
        taxonomy: Taxonomy | None = None,
        prompts: Prompts | None = None,
        exceptions: ExceptionSet | None = None,
        device: str = "cpu",
        dtype: str | torch.dtype = "auto",
        **options: Any,
    ) -> QwenClassifier:
        """Loads a checkpoint directory (or hub id) with `from_pretrained`."""
        path = resolve_model_dir(str(model_dir))
        processor = ImageOnlyQwen2_5_VLProcessor.from_pretrained(path)
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=dtype)
        questionnaire = Questionnaire(
            taxonomy or load_taxonomy(),
            prompts or load_prompts(),
            exceptions or load_exceptions(),
            language,
        )
        return cls(
            # transformers wraps `to` with functools.wraps, which mypy sees as an unbound
            # callable wanting the model as its first argument.
            model.to(device),  # type: ignore[arg-type]
            processor,
            version=model_version(path),
            questionnaire=questionnaire,
            **options,
        )

    @property
    def prompt_version(self) -> str:
        """What decided the answers besides the weights, as results record it: prompts,
        exceptions, taxonomy and, when it scales them, the calibration temperature."""
        version = self.questionnaire.version
        return version if self.temperature == 1.0 else f"{version}+T{self.temperature:.3g}"

    @property
    def language(self) -> str:
        return self.questionnaire.language

    def classify(self, crops: list[Image.Image]) -> list[Classification]:
        """Step 1 and step 2 for every crop: five batched forward passes in all."""
        if not crops:
            return []
        crops = [fit_pixel_budget(crop.convert("RGB"), self.max_pixels) for crop in crops]
        with torch.inference_mode():
            prefix = self._prefill(crops)
            return two_step.classify(
                lambda requests: self._ask(prefix, requests), len(crops), self.questionnaire,
                self.temperature,
            )  # fmt: skip

    def explain(
        self, crops: list[Image.Image], labels: Sequence[tuple[str, str, str]], language: str
    ) -> list[str]:
        """One sentence per crop for (defect type, severity, step 1 candidate), batched."""
        if not crops:
            return []
        questionnaire = self._questionnaire(language)
        texts = [
            self._chat([(None, questionnaire.reason_prompt(*label))], questionnaire)
            for label in labels
        ]
        images = [fit_pixel_budget(crop.convert("RGB"), self.max_pixels) for crop in crops]
        # Left padding: every row's prompt ends at the same column, where generation starts.
        inputs = self.processor(
            text=texts, images=images, return_tensors="pt", padding=True, padding_side="left"
        ).to(self.device)
        with torch.inference_mode():
            generated = self.model.generate(
                **inputs, max_new_tokens=self.reason_max_new_tokens, do_sample=False
            )
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        texts = self._tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [first_sentence(text) for text in texts]

    def step1_tokens(self, crop: Image.Image) -> int:
        """Tokens the model reads for step 1 of one crop: prefix, image and type question."""
        crop = fit_pixel_budget(crop.convert("RGB"), self.max_pixels)
        grid = self.processor.image_processor(images=[*self._examples, crop])["image_grid_thw"]
        counts = [int(g.prod()) // self.processor.image_processor.merge_size**2 for g in grid]
        prefix = expand_image_tokens(self._prefix_text, self.processor.image_token, counts)
        question = self._question_text.replace(_QUESTION_SLOT, self.questionnaire.step1().text)
        return len(self._tokenizer(prefix + question, add_special_tokens=False)["input_ids"])

    def _prefill(self, crops: list[Image.Image]) -> _Prefix:
        """Reads every crop's prefix once; the vision tower sees each image once."""
        images = [*self._examples, *crops]
        pixels = self.processor.image_processor(images=images, return_tensors="pt")
        grid = pixels["image_grid_thw"]
        features = self.model.model.get_image_features(
            pixels["pixel_values"].to(self.device), grid.to(self.device), return_dict=True
        ).pooler_output
        merge = self.processor.image_processor.merge_size
        counts = (grid.prod(-1) // merge**2).tolist()
        examples = list(range(len(self._examples)))
        rows, row_features, row_grids = [], [], []
        for i in range(len(crops)):
            order = [*examples, len(examples) + i]
            text = expand_image_tokens(
                self._prefix_text, self.processor.image_token, [counts[j] for j in order]
            )
            rows.append(self._tokenizer(text, add_special_tokens=False)["input_ids"])
            row_features += [features[j] for j in order]
            row_grids += [grid[j] for j in order]
        ids, mask = left_pad(rows, self._pad_id)
        image_tokens = (ids == self.processor.image_token_id).long()
        positions, _ = self.model.model.get_rope_index(
            ids, image_tokens, torch.stack(row_grids), attention_mask=mask
        )
        mask = mask.to(self.device)
        outputs = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask,
            position_ids=positions.to(self.device),
            # The model concatenates per-image tensors here (its own get_image_features puts
            # a tuple of them), though transformers types pooler_output as one Tensor.
            mm_encoder_outputs={
                "image": BaseModelOutputWithPooling(pooler_output=row_features)  # type: ignore[arg-type]
            },
            use_cache=True,
            logits_to_keep=1,
        )
        return _Prefix(outputs.past_key_values, mask, next_positions(positions).to(self.device))

    def _ask(self, prefix: _Prefix, requests: list[tuple[int, Question]]) -> list[dict[str, float]]:
        """Scores every answer of every (crop, question): two forward passes."""
        crop_rows = torch.tensor([crop for crop, _ in requests], device=self.device)
        suffixes = [self._question_text.replace(_QUESTION_SLOT, q.text) for _, q in requests]
        tokens = self._tokenizer(suffixes, add_special_tokens=False)["input_ids"]
        q_ids, q_mask = left_pad(tokens, self._pad_id)
        q_mask = q_mask.to(self.device)
        mask = torch.cat([prefix.mask[crop_rows], q_mask], dim=1)
        positions = continued_positions(prefix.next_position[crop_rows], q_mask)
        question = self.model(
            input_ids=q_ids.to(self.device),
            attention_mask=mask,
            position_ids=positions,
            past_key_values=select_rows(prefix.cache, crop_rows),
            use_cache=True,
            logits_to_keep=1,
        )
        after = _Prefix(question.past_key_values, mask, next_positions(positions))
        scores = self._answer_scores(after, question.logits[:, -1], [q for _, q in requests])
        distributions, start = [], 0
        for _, q in requests:
            end = start + len(q.choices)
            distributions.append(choice_distribution(q.choices, scores[start:end]))
            start = end
        return distributions

    def _answer_scores(
        self, asked: _Prefix, last_logits: torch.Tensor, questions: list[Question]
    ) -> list[float]:
        """log P(answer | question) for every choice of every question, in order."""
        owners = [row for row, q in enumerate(questions) for _ in q.choices]
        answers = [self._answer_tokens(choice) for q in questions for choice in q.choices]
        a_ids, a_mask = right_pad(answers, self._pad_id)
        a_ids, a_mask = a_ids.to(self.device), a_mask.to(self.device)
        index = torch.tensor(owners, device=self.device)
        # The question's last logits predict each answer's first token ...
        logits = last_logits[index].unsqueeze(1)
        if a_ids.shape[1] > 1:  # ... and feeding the answers predicts the rest.
            fed = a_mask[:, :-1]
            rest = self.model(
                input_ids=a_ids[:, :-1],
                attention_mask=torch.cat([asked.mask[index], fed], dim=1),
                position_ids=continued_positions(asked.next_position[index], fed),
                past_key_values=select_rows(asked.cache, index),
                use_cache=False,
            ).logits
            logits = torch.cat([logits, rest], dim=1)
        return answer_log_likelihoods(logits, a_ids, a_mask).tolist()

    def _templates(self) -> tuple[str, str]:
        """The chat split after the crop's image: (prefix, question with a slot)."""
        examples = [(example, None) for example in self.questionnaire.prompts.examples]
        text = self._chat([*examples, (None, _QUESTION_SLOT)], self.questionnaire)
        cut = text.rindex("<|vision_end|>") + len("<|vision_end|>")
        prefix, question = text[:cut], text[cut:]
        if _QUESTION_SLOT not in question:
            raise ValueError("the chat template must put the question after the image")
        return prefix, question

    def _chat(self, turns: list[tuple[Any, str | None]], questionnaire: Questionnaire) -> str:
        """Renders system + few-shot turns + the final user turn with the chat template."""
        p = questionnaire.prompt_set
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": [{"type": "text", "text": p.system}]}
        ]
        for example, prompt in turns:
            text = prompt if example is None else p.example_question
            messages.append(
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
            )
            if example is not None:
                answer = {"type": "text", "text": example.answer}
                messages.append({"role": "assistant", "content": [answer]})
        return self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )

    def _answer_tokens(self, choice: str) -> list[int]:
        if choice not in self._answer_ids:
            ids = self._tokenizer(choice + _ANSWER_END, add_special_tokens=False)["input_ids"]
            self._answer_ids[choice] = list(ids)
        return self._answer_ids[choice]

    def _questionnaire(self, language: str) -> Questionnaire:
        if language not in self._questionnaires:
            q = self.questionnaire
            self._questionnaires[language] = Questionnaire(
                q.taxonomy, q.prompts, q.exceptions, language
            )
        return self._questionnaires[language]
