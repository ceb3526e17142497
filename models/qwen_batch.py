"""Tensor plumbing for scoring many questions about many crops with one shared prefix.

The classifier encodes each crop's prefix (system prompt, few-shot examples, the crop)
once and keeps its key/value cache. A question continues that cache, and its answers
continue the question's cache: a 7B model then reads the ~300 image and system tokens
once per crop instead of once per (question, answer) pair, which is most of the cost.

Rows of different lengths are padded on the left for prompts, so that every row's last
token is real and its logits predict the answer's first token, and on the right for
answers. Qwen2.5-VL's rotary positions are 3D (time, height, width) over the image and
plain counters after it; the positions of continued text are computed here from each
row's next position, so padding never shifts them.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import CacheLayerMixin


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of shape (rows, longest), real tokens at the right end of each row."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask


def right_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of shape (rows, longest), real tokens at the left end of each row."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def continued_positions(start: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """3D rotary positions (3, rows, length) for text that continues each row at `start`.

    Text tokens use the same position on all three axes; padded slots get the position
    of their neighbour, which does not matter because the mask hides them.
    """
    counted = mask.cumsum(dim=-1) - 1
    positions = start.view(-1, 1).to(mask.device) + counted.clamp(min=0)
    return positions.unsqueeze(0).expand(3, -1, -1)


def next_positions(position_ids: torch.Tensor) -> torch.Tensor:
    """Each row's position after its last token (the last column is real: left padding)."""
    return position_ids[0, :, -1] + 1


def select_rows(cache: DynamicCache, index: torch.Tensor) -> DynamicCache:
    """A new cache whose row r is row index[r] of `cache` (rows may repeat).

    The source cache is left as it was, so one prefix can be continued by several
    questions and one question by several answers.
    """
    layers = _keys_and_values(cache)
    index = index.to(layers[0][0].device)
    return DynamicCache(ddp_cache_data=[(keys[index], values[index]) for keys, values in layers])


def _keys_and_values(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's keys and values. Qwen2.5-VL's layers are all attention layers, filled
    once a prefix ran; a cache layer of another kind, or an empty one, has none to select."""
    pairs = []
    for layer in cache.layers:
        if not isinstance(layer, CacheLayerMixin) or layer.keys is None or layer.values is None:
            raise ValueError(f"a {type(layer).__name__} holds no keys and values to select from")
        pairs.append((layer.keys, layer.values))
    return pairs


def expand_image_tokens(text: str, image_token: str, counts: list[int]) -> str:
    """Replaces the n-th image placeholder with counts[n] copies, as the processor does."""
    parts = text.split(image_token)
    if len(parts) - 1 != len(counts):
        raise ValueError(f"{len(parts) - 1} image placeholders for {len(counts)} images")
    expanded = [parts[0]]
    for count, rest in zip(counts, parts[1:], strict=True):
        expanded.append(image_token * count + rest)
    return "".join(expanded)
