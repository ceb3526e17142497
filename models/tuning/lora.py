"""LoRA fine-tuning of the Qwen2.5-VL classifier on instruction examples.

Only the language model learns: LoRA adapters go on its attention and MLP projections,
chosen by a regex on module names, because the vision blocks use the same names
(`mlp.gate_proj/up_proj/down_proj`) and a name list (or peft's `all-linear`) would adapt
the vision tower too. The vision tower, the merger, the embeddings and the LM head stay
frozen, so the crops are seen as the champion sees them.

`TuningOptions.trainable_modules` (peft's `modules_to_save`) also trains named base
modules in full and saves their copies in the adapter, which loads back like any other. It
is empty in production and should stay so: a real Qwen2.5-VL's merger was trained to map
its vision tower into the language model, and its LM head to speak; copies of the 7B's
(about 45 M and 545 M parameters) in every adapter would relearn that from a few hundred
crops. The option exists for a base that never learnt either, like the tiny random-weight
model of tests and CI. Its random merger hands the language model features it was never
taught to read, and its random LM head spans about +-1.5 logits, so every token is nearly
1/1024 likely whatever the adapters do. A three-token answer ("no" is n, o, <|im_end|> in
the tiny BPE) then starts about 7 nats behind a two-token one ("yes"), a gap that range
all but cannot close: step 2's checks answer yes (0.999 on the untuned base) and overturn
every candidate to normal. bench/vlm_tuning.py measures the tiny base with LoRA alone (it
learnt nothing) and with ("merger", "lm_head") trained in full. A module trained in full
keeps the base's dtype (bf16 on CUDA): peft upcasts only the LoRA weights.

The loss is the mean negative log-likelihood of the answer tokens (the answer and its
`<|im_end|>`, exactly what constrained-choice scoring sums); the LM head is applied to
those positions only, which keeps a 7B's 152k-word logits from filling the GPU. One code
path runs everywhere: on CUDA the base is bf16 with gradient checkpointing, to fit a 7B
and its activations; on CPU fp32 (CPU bf16 matmuls are slower, and tests compare logits
exactly). The adapter weights stay fp32 either way (peft upcasts them), so AdamW's small
updates are not rounded away.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils import ModulesToSaveWrapper
from transformers import Qwen2_5_VLForConditionalGeneration

from models.classifier import QwenClassifier
from models.images import DEFAULT_MAX_PIXELS
from models.qwen_processor import ImageOnlyQwen2_5_VLProcessor
from models.training.train import warmup_cosine
from models.tuning.data import IGNORE, Batch, ChatExample, collate

# The language model's attention and MLP projections of transformers 5's Qwen2.5-VL
# (`model.language_model.layers.N.{self_attn,mlp}.*_proj`); peft full-matches it against
# module names relative to the model, so `model.visual.blocks.N.mlp.gate_proj` never matches.
LANGUAGE_PROJECTIONS = (
    r"(?:.*\.)?language_model\.layers\.\d+\."
    r"(?:self_attn\.(?:q|k|v|o)_proj|mlp\.(?:gate|up|down)_proj)"
)

# step, total steps, that step's loss, estimated seconds left (as detector training)
ProgressCallback = Callable[[int, int, float, float], None]


@dataclass(frozen=True)
class TuningOptions:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    steps: int = 200
    learning_rate: float = 2e-4
    batch_size: int = 8
    seed: int = 0
    kinds: tuple[str, ...] | None = None  # None: every kind in the examples
    warmup: int = 10
    final_lr_share: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # Must be the serving classifier's budget: the crops' token count is part of the prompt.
    max_pixels: int = DEFAULT_MAX_PIXELS
    # The answer loss before and after is measured on this many examples (seeded sample).
    eval_examples: int = 64
    device: str | None = None  # None: CUDA when there is one, else CPU
    target_modules: str = LANGUAGE_PROJECTIONS
    # Base modules trained in full beside the LoRA layers (peft's modules_to_save: a name
    # matches every module whose dotted name ends with it), e.g. ("merger",) for the
    # vision merger. Empty in production: see the module's docstring.
    trainable_modules: tuple[str, ...] = ()


@dataclass
class Tuned:
    """A tuned model in memory: the base with LoRA layers, and what happened."""

    model: PeftModel
    processor: ImageOnlyQwen2_5_VLProcessor
    base_version: str
    options: TuningOptions
    examples: int
    losses: list[float]  # one per step
    loss_before: float  # answer-token NLL on the evaluation sample
    loss_after: float
    seconds: float
    device: str
    dtype: str
    kinds: list[str] = field(default_factory=list)


def tune(
    model_dir: str | Path,
    examples: Sequence[ChatExample],
    options: TuningOptions | None = None,
    on_progress: ProgressCallback | None = None,
) -> Tuned:
    """Loads the base as serving does and trains a LoRA adapter on `examples`.

    Runs a fixed number of steps from a seed, never a time budget. An exception from
    on_progress stops the run (how a caller cancels one).
    """
    options = options or TuningOptions()
    if options.kinds:
        examples = [e for e in examples if e.kind in options.kinds]
    if not examples:
        raise ValueError("no instruction examples to tune on")
    if options.steps < 1 or options.batch_size < 1:
        raise ValueError("steps and batch_size must be positive")
    device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(options.seed)
    base = QwenClassifier.load(model_dir, device=device, dtype=dtype)
    model = lora_model(base.model, options, checkpointing=device.startswith("cuda"))
    probe = _sample(examples, options.eval_examples, options.seed)
    loss_before = answer_loss(model, base.processor, probe, options)
    started = time.monotonic()
    losses = _fit(model, base.processor, examples, options, on_progress)
    seconds = time.monotonic() - started
    return Tuned(
        model=model,
        processor=base.processor,
        base_version=base.version,
        options=options,
        examples=len(examples),
        losses=losses,
        loss_before=loss_before,
        loss_after=answer_loss(model, base.processor, probe, options),
        seconds=seconds,
        device=device,
        dtype=str(dtype).removeprefix("torch."),
        kinds=sorted({e.kind for e in examples}),
    )


def lora_model(
    model: Qwen2_5_VLForConditionalGeneration, options: TuningOptions, checkpointing: bool
) -> PeftModel:
    """Wraps the base (in place) with trainable LoRA layers on the language projections."""
    if checkpointing:
        # Not reentrant: the frozen embeddings give inputs without grad, which the
        # reentrant variant would silently cut the adapters' gradients at.
        # (transformers 5.23 renamed gradient_checkpointing_enable to this.)
        model.activation_checkpointing_enable({"use_reentrant": False})
    config = LoraConfig(
        r=options.rank,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=options.target_modules,
        modules_to_save=list(options.trainable_modules) or None,
        bias="none",
    )
    peft_model = get_peft_model(model, config)
    if not any(p.requires_grad for p in peft_model.parameters()):
        raise ValueError(f"target_modules {options.target_modules!r} matched no module")
    wrapped = [name for name, module in peft_model.named_modules()
               if isinstance(module, ModulesToSaveWrapper)]  # fmt: skip
    unmatched = [n for n in options.trainable_modules if not any(w.endswith(n) for w in wrapped)]
    if unmatched:
        # peft ignores a name that matches nothing: the run would silently train less.
        raise ValueError(f"trainable_modules {unmatched} matched no module")
    return peft_model


def answer_nll(model: PeftModel, batch: Batch) -> tuple[torch.Tensor, int]:
    """(sum of the answer tokens' negative log-likelihoods, number of answer tokens)."""
    base = base_model(model)
    image_tokens = batch.input_ids.eq(base.config.image_token_id).long()
    # 3D rotary positions as the scorer computes them (models/classifier.py `_prefill`).
    positions, _ = base.model.get_rope_index(
        batch.input_ids, image_tokens, batch.image_grid_thw, attention_mask=batch.attention_mask
    )
    hidden = base.model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=positions,
        pixel_values=batch.pixel_values,
        image_grid_thw=batch.image_grid_thw,
        use_cache=False,
    ).last_hidden_state
    # Position t predicts token t + 1: keep the positions whose next token is an answer's.
    targets = batch.labels[:, 1:]
    keep = targets != IGNORE
    logits = base.lm_head(hidden[:, :-1][keep]).float()
    nll = torch.nn.functional.cross_entropy(logits, targets[keep], reduction="sum")
    return nll, int(keep.sum())


def answer_loss(
    model: PeftModel,
    processor: ImageOnlyQwen2_5_VLProcessor,
    examples: Sequence[ChatExample],
    options: TuningOptions,
) -> float:
    """Mean NLL per answer token over `examples`, in eval mode (no dropout, no grad)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device, dtype = _placement(model)
    with torch.inference_mode():
        for start in range(0, len(examples), options.batch_size):
            chunk = examples[start : start + options.batch_size]
            batch = collate(processor, chunk, options.max_pixels).to(device, dtype)
            nll, tokens = answer_nll(model, batch)
            total, count = total + float(nll), count + tokens
    model.train(was_training)
    return total / max(1, count)


def _fit(
    model: PeftModel,
    processor: ImageOnlyQwen2_5_VLProcessor,
    examples: Sequence[ChatExample],
    options: TuningOptions,
    on_progress: ProgressCallback | None,
) -> list[float]:
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=options.learning_rate, weight_decay=options.weight_decay
    )
    factor = warmup_cosine(options.steps, options.warmup, options.final_lr_share)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    device, dtype = _placement(model)
    losses: list[float] = []
    started = time.monotonic()
    model.train()
    batches = _batches(len(examples), options.batch_size, options.steps, options.seed)
    for step, indices in enumerate(batches, start=1):
        batch = collate(processor, [examples[i] for i in indices], options.max_pixels)
        optimizer.zero_grad(set_to_none=True)
        nll, tokens = answer_nll(model, batch.to(device, dtype))
        loss = nll / max(1, tokens)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, options.grad_clip)
        optimizer.step()
        schedule.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"tuning loss became {value} at step {step}")
        losses.append(value)
        if on_progress is not None:
            elapsed = time.monotonic() - started
            on_progress(step, options.steps, value, elapsed / step * (options.steps - step))
    model.eval()
    return losses


def _batches(n: int, batch_size: int, steps: int, seed: int) -> Iterator[list[int]]:
    """A fresh seeded permutation per epoch; an epoch's tail is dropped so that no example
    appears twice in one batch (as detector training does)."""
    rng = random.Random(seed)
    size = min(batch_size, n)
    queue: list[int] = []
    for _ in range(steps):
        if len(queue) < size:
            queue = rng.sample(range(n), n)
        batch, queue = queue[:size], queue[size:]
        yield batch


def _sample(examples: Sequence[ChatExample], count: int, seed: int) -> list[ChatExample]:
    if len(examples) <= count:
        return list(examples)
    return [examples[i] for i in sorted(random.Random(seed).sample(range(len(examples)), count))]


def _placement(model: PeftModel) -> tuple[torch.device, torch.dtype]:
    """Where the base's weights live and their dtype: the pixels must match them."""
    weight = base_model(model).lm_head.weight
    return weight.device, weight.dtype


def base_model(model: PeftModel) -> Qwen2_5_VLForConditionalGeneration:
    """The Qwen2.5-VL inside the wrapper, its projections now LoRA layers."""
    base = model.get_base_model()
    if not isinstance(base, Qwen2_5_VLForConditionalGeneration):
        raise TypeError(f"expected a Qwen2.5-VL inside the adapter, got {type(base).__name__}")
    return base
