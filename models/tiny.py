"""Tiny random-weight models of the real production classes, for tests and CI.

No weights can be downloaded on the development machines, so tests build an
`RTDetrForObjectDetection` and a `Qwen2_5_VLForConditionalGeneration` from small configs,
`save_pretrained` them with their processors, and load them back through the same
`from_pretrained` path production uses for RT-DETR-L and Qwen2.5-VL-7B. The answers are
random; the shapes, tokenization, chat template and loading code are the real ones.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2Tokenizer,
    Qwen2VLImageProcessorPil,
    RTDetrConfig,
    RTDetrForObjectDetection,
    RTDetrImageProcessorPil,
    RTDetrResNetConfig,
)
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from models.exceptions import DEFAULT_PATH as EXCEPTIONS_PATH
from models.images import DEFAULT_MAX_PIXELS
from models.prompts import PROMPTS_DIR
from models.qwen_processor import QWEN2_VL_CHAT_TEMPLATE, ImageOnlyQwen2_5_VLProcessor
from models.taxonomy import DEFAULT_PATH as TAXONOMY_PATH

SEED = 0
# Qwen's special tokens, in the order the real tokenizer numbers them.
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
_DETECTOR_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
# transformers 5 saves a processor's image settings inside processor_config.json.
_CLASSIFIER_FILES = (
    "config.json",
    "model.safetensors",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
)


def build_tiny_detector(
    path: Path, id2label: dict[int, str] | None = None, seed: int = SEED
) -> Path:
    """Builds (once) a ~1 M parameter RT-DETR with random weights and its processor.

    Another seed gives other weights, hence another version (a challenger in tests).
    """
    path = Path(path)
    if _is_complete(path, _DETECTOR_FILES):
        return path
    torch.manual_seed(seed)
    model = RTDetrForObjectDetection(tiny_detector_config(id2label)).eval()
    processor = RTDetrImageProcessorPil(size={"height": 640, "width": 640})
    return _save_atomically(path, _DETECTOR_FILES, model, processor)


def tiny_detector_config(id2label: dict[int, str] | None = None) -> RTDetrConfig:
    id2label = id2label or {0: "defect"}
    # Backbone stages 2-4 give 64/128/256 channels; the encoder consumes exactly those.
    backbone = RTDetrResNetConfig(
        embedding_size=16,
        hidden_sizes=[32, 64, 128, 256],
        depths=[1, 1, 1, 1],
        layer_type="bottleneck",
        # A dataclass config that takes out_indices in __post_init__'s **kwargs, which
        # mypy does not see (its field is the private _out_indices).
        out_indices=[2, 3, 4],  # type: ignore[call-arg]
    )
    return RTDetrConfig(
        backbone_config=backbone,
        encoder_in_channels=[64, 128, 256],
        encoder_hidden_dim=64,
        encoder_ffn_dim=128,
        encoder_attention_heads=4,
        d_model=64,
        decoder_ffn_dim=128,
        decoder_in_channels=[64, 64, 64],
        decoder_layers=2,
        decoder_attention_heads=4,
        num_queries=50,
        num_denoising=0,
        id2label=id2label,
        label2id={label: index for index, label in id2label.items()},
    )


def build_tiny_classifier(path: Path, seed: int = SEED) -> Path:
    """Builds (once) a tiny Qwen2.5-VL with random weights, a trained BPE and its processor."""
    path = Path(path)
    if _is_complete(path, _CLASSIFIER_FILES):
        return path
    tokenizer = train_tokenizer()
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(tiny_qwen_config(tokenizer)).eval()
    set_generation_tokens(model, tokenizer)
    return _save_atomically(path, _CLASSIFIER_FILES, model, qwen_processor(tokenizer))


def qwen_processor(tokenizer: Qwen2Tokenizer) -> ImageOnlyQwen2_5_VLProcessor:
    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=DEFAULT_MAX_PIXELS)
    return ImageOnlyQwen2_5_VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN2_VL_CHAT_TEMPLATE
    )


def set_generation_tokens(model: Qwen2_5_VLForConditionalGeneration, tokenizer: Any) -> None:
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.pad_token_id


def special_token_ids(tokenizer: Qwen2Tokenizer) -> dict[str, int]:
    """The ids a Qwen2.5-VL config must name, as this tokenizer numbers them."""
    ids = {token: _token_id(tokenizer, token) for token in QWEN_SPECIAL_TOKENS}
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def _token_id(tokenizer: Qwen2Tokenizer, token: str) -> int:
    found = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(found, int):  # one token in gives one id out
        raise TypeError(f"{token!r} has no single id: {found!r}")
    return found


def tiny_qwen_config(tokenizer: Qwen2Tokenizer) -> Qwen2_5_VLConfig:
    ids = special_token_ids(tokenizer)
    # mrope_section splits head_dim/2 = 8 rotary frequencies over (time, height, width).
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 3, 3]},
        **{key: ids[key] for key in ("bos_token_id", "eos_token_id", "pad_token_id")},
    }
    vision_config = {
        "depth": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 4,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
    }
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
    )


def train_tokenizer(vocab_size: int = 1024) -> Qwen2Tokenizer:
    """Trains a byte-level BPE the way Qwen's is built (same split regex, ByteLevel)."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=QWEN_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    # Qwen2Tokenizer wants merges as tuples; tokenizers may serialise them as "a b".
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    # transformers types merges as strings and unk_token as str, but hands merges to
    # tokenizers' BPE (which takes pairs) and takes None for "no unknown token".
    return Qwen2Tokenizer(
        vocab=state["vocab"],
        merges=merges,  # type: ignore[arg-type]
        unk_token=None,  # type: ignore[arg-type]
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        extra_special_tokens=QWEN_SPECIAL_TOKENS[1:],
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
    )


def _corpus() -> list[str]:
    """Loupe's own taxonomy, exceptions and prompts (en and ko), so the merges fit them."""
    texts = [TAXONOMY_PATH.read_text(encoding="utf-8"), EXCEPTIONS_PATH.read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in sorted(PROMPTS_DIR.glob("v*.json"))]
    texts.append("The fabric shows a small brown stain near the seam. 원단에 작은 얼룩이 있습니다.")
    return texts


def _is_complete(path: Path, required: tuple[str, ...]) -> bool:
    return all((path / name).is_file() for name in required)


def _save_atomically(path: Path, required: tuple[str, ...], *parts: object) -> Path:
    """Saves into a sibling temp dir and moves files in, config.json last.

    A directory is only ever "complete" once every file is in place, so a build that was
    killed half-way is redone rather than loaded.
    """
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for part in parts:
            part.save_pretrained(staging)  # type: ignore[attr-defined]
        missing = [name for name in required if not (staging / name).is_file()]
        if missing:
            raise RuntimeError(f"save_pretrained did not write {missing}")
        path.mkdir(parents=True, exist_ok=True)
        names = sorted(p.name for p in staging.iterdir())
        for name in [n for n in names if n != "config.json"] + ["config.json"]:
            os.replace(staging / name, path / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
