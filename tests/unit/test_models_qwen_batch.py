"""Padding, positions and cache rows for batched scoring, on plain tensors."""

import torch
from transformers import DynamicCache

from models.qwen_batch import (
    continued_positions,
    expand_image_tokens,
    left_pad,
    next_positions,
    right_pad,
    select_rows,
)


def test_left_padding_puts_every_rows_last_token_in_the_last_column() -> None:
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_right_padding_keeps_answers_at_the_start() -> None:
    ids, mask = right_pad([[5], [6, 7, 8]], pad_id=9)
    assert ids.tolist() == [[5, 9, 9], [6, 7, 8]]
    assert mask.tolist() == [[1, 0, 0], [1, 1, 1]]


def test_continued_positions_skip_padding_and_agree_on_all_three_axes() -> None:
    start = torch.tensor([10, 3])
    _, mask = left_pad([[1, 2, 3], [4]], pad_id=0)
    positions = continued_positions(start, mask)
    assert positions.shape == (3, 2, 3)
    assert positions[0].tolist() == [[10, 11, 12], [3, 3, 3]]  # pads reuse a masked slot
    assert torch.equal(positions[0], positions[2])
    assert next_positions(positions).tolist() == [13, 4]
    _, answers = right_pad([[1], [2, 3]], pad_id=0)
    assert continued_positions(torch.tensor([7, 7]), answers)[0].tolist() == [[7, 7], [7, 8]]


def test_selected_rows_are_copies_and_the_source_cache_is_untouched() -> None:
    keys = torch.arange(2 * 1 * 3 * 2, dtype=torch.float).view(2, 1, 3, 2)
    cache = DynamicCache(ddp_cache_data=[(keys, keys + 100)])
    chosen = select_rows(cache, torch.tensor([1, 1, 0]))
    assert torch.equal(chosen.layers[0].keys[0], keys[1])
    assert torch.equal(chosen.layers[0].keys[2], keys[0])
    assert torch.equal(chosen.layers[0].values[1], keys[1] + 100)
    chosen.layers[0].keys += 1  # continuing one selection must not change the prefix
    assert torch.equal(cache.layers[0].keys, keys)


def test_image_placeholders_expand_to_each_images_token_count() -> None:
    text = "a<img>b<img>c"
    assert expand_image_tokens(text, "<img>", [2, 1]) == "a<img><img>b<img>c"
