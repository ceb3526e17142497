"""The Qwen2.5-VL processor without its video half.

The stock `Qwen2_5_VLProcessor` always builds a video processor, and that needs
torchvision, which Loupe never installs (a CPU torchvision for its torch pin does not
exist, and with a CUDA one present transformers fails to import it). Loupe sends still images
only, so this subclass drops the video processor from the constructor signature:
`ProcessorMixin` derives the sub-processors to load from that signature, which makes
`from_pretrained` work both on a directory this class saved and on a real Qwen2.5-VL
checkpoint (whose `video_preprocessor_config.json` is then simply not read).
"""

from __future__ import annotations

from typing import Any

from transformers import Qwen2_5_VLProcessor

# The Qwen2-VL chat template. Real checkpoints ship their own (chat_template.json);
# tiny test models get this one so that prompts are rendered exactly as in production.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    """A `Qwen2_5_VLProcessor` for images and text only (no torchvision needed)."""

    def __init__(
        self,
        image_processor: Any = None,
        tokenizer: Any = None,
        chat_template: str | None = None,
        **kwargs: Any,
    ) -> None:
        # transformers leaves this __init__ unannotated; untyped_calls_exclude does not
        # reach a call through super().
        super().__init__(  # type: ignore[no-untyped-call]
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=None,
            chat_template=chat_template,
            **kwargs,
        )
