"""True-size models with random weights on a GPU: detector images/s, classifier crops/s, and
images/s end to end through Ray Serve. Prints a table with the targets.

    python bench/models_gpu.py                       # RT-DETR-L + Qwen2.5-VL-7B (bf16), cuda
    python bench/models_gpu.py --tiny --device cpu   # the same code with tiny configs (smoke)

Both models are built from their configuration values (no download): RT-DETR-L as
transformers' r50vd-style RTDetrConfig (ResNet-50-vd backbone, d_model 256, 6 decoder
layers, 300 queries, one class) and Qwen2.5-VL-7B-Instruct's published config (28 layers,
hidden 3584, 32-block vision tower) in bf16. With random weights the arithmetic, and so
the timing, is that of the real checkpoints. The tokenizer is Loupe's small trained BPE
(models/tiny.py), since none can be downloaded: the table prints the tokens per crop so
that the prompt length can be compared with Qwen's own tokenizer.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import tiny  # noqa: E402
from models.classifier import QwenClassifier  # noqa: E402
from models.detector import RTDetrDetector  # noqa: E402
from models.exceptions import load_exceptions  # noqa: E402
from models.prompts import load_prompts  # noqa: E402
from models.taxonomy import load_taxonomy  # noqa: E402
from models.two_step import Questionnaire  # noqa: E402

TARGETS = {"detector": 1000.0, "classifier": 40.0, "end to end": 25.0}  # per second, one H100
CROP_SIDE = 448


def detector_config(full_size: bool) -> Any:
    from transformers import RTDetrConfig

    if not full_size:
        return tiny.tiny_detector_config()
    # RTDetrConfig's defaults are RT-DETR r50vd: ResNet-50-vd, hybrid encoder at 256,
    # 6 decoder layers, 300 queries. Only the classes are the site's (one: "defect").
    return RTDetrConfig(id2label={0: "defect"}, label2id={"defect": 0})


def qwen_7b_config(tokenizer: Any) -> Any:
    """Qwen2.5-VL-7B-Instruct's config.json values; special ids from the stand-in tokenizer."""
    from transformers import Qwen2_5_VLConfig

    ids = tiny.special_token_ids(tokenizer)
    text = {
        "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
        "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
        "max_position_embeddings": 128000, "rms_norm_eps": 1e-6, "hidden_act": "silu",
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                            "mrope_section": [16, 24, 24]},
        "tie_word_embeddings": False, "use_sliding_window": False,
        **{k: ids[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")},
    }  # fmt: skip
    vision = {
        "depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
        "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2,
        "temporal_patch_size": 2, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2, "hidden_act": "silu",
    }  # fmt: skip
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        tie_word_embeddings=False,
        **{k: ids[k] for k in ("image_token_id", "video_token_id")},
        **{k: ids[k] for k in ("vision_start_token_id", "vision_end_token_id")},
    )


def build_models(args: argparse.Namespace) -> tuple[RTDetrDetector, QwenClassifier]:
    from transformers import (
        Qwen2_5_VLForConditionalGeneration,
        RTDetrForObjectDetection,
        RTDetrImageProcessorPil,
    )

    full = not args.tiny
    device = torch.device(args.device)
    torch.manual_seed(0)
    with device:  # random weights initialised where they will run
        model = RTDetrForObjectDetection(detector_config(full)).to(args.detector_dtype).eval()
    processor = RTDetrImageProcessorPil(size={"height": 640, "width": 640})
    detector = RTDetrDetector(model, processor, version="rt-detr-random", threshold=0.25)
    tokenizer = tiny.train_tokenizer()
    config = qwen_7b_config(tokenizer) if full else tiny.tiny_qwen_config(tokenizer)
    with device:
        qwen = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=args.classifier_dtype)
    tiny.set_generation_tokens(qwen, tokenizer)
    questionnaire = Questionnaire(load_taxonomy(), load_prompts(), load_exceptions(), "en")
    classifier = QwenClassifier(
        qwen.eval(), tiny.qwen_processor(tokenizer), version="qwen2.5-vl-random",
        questionnaire=questionnaire, max_pixels=CROP_SIDE * CROP_SIDE,
        reason_max_new_tokens=args.reason_tokens,
    )  # fmt: skip
    print(f"detector {_params(model):.1f} M parameters, classifier {_params(qwen):.1f} M")
    return detector, classifier


def measure(label: str, count: int, action: Callable[[], object], repeats: int) -> float:
    """Items per second, the median of `repeats` timed runs after one warm-up run."""
    action()
    seconds = []
    for _ in range(repeats):
        _sync()
        started = time.perf_counter()
        action()
        _sync()
        seconds.append(time.perf_counter() - started)
    rate = count / statistics.median(seconds)
    print(f"  {label:<44} {rate:10.1f} /s", flush=True)
    return rate


def bench_models(args: argparse.Namespace, detector: Any, classifier: Any) -> list[tuple]:
    rows = []
    photos = [_photo((1280, 960), seed) for seed in range(max(args.batches))]
    crops = [_photo((CROP_SIDE, CROP_SIDE), seed) for seed in range(max(args.batches))]
    labels = [("stain", "moderate", "stain")] * len(crops)
    for batch in args.batches:
        rate = measure(f"detector, batch {batch}", batch,
                       lambda b=batch: detector.detect(photos[:b]), args.repeats)  # fmt: skip
        rows.append(("detector images/s", batch, rate, "detector"))
    for batch in args.batches:
        rate = measure(f"classifier step 1 + 2, batch {batch}", batch,
                       lambda b=batch: classifier.classify(crops[:b]), args.repeats)  # fmt: skip
        rows.append(("classifier crops/s, step 1 + 2", batch, rate, "classifier"))
    for batch in args.batches:

        def both(b: int = batch) -> None:
            classifier.classify(crops[:b])
            classifier.explain(crops[:b], labels[:b], "en")

        rate = measure(f"classifier step 1 + 2 + reason, batch {batch}", batch, both,
                       args.repeats)  # fmt: skip
        rows.append(("classifier crops/s, with reason", batch, rate, "classifier"))
    return rows


def bench_serve(args: argparse.Namespace, detector: Any, classifier: Any) -> list[tuple]:
    """Saves both models, serves them with Ray Serve and sends concurrent HTTP requests."""
    from models.serve import runner
    from models.serve.client import HttpInferenceClient
    from tests.support import free_port

    with tempfile.TemporaryDirectory(prefix="loupe-gpu-bench-", dir=args.scratch) as scratch:
        root = Path(scratch)
        detector.model.save_pretrained(root / "detector")
        detector.processor.save_pretrained(root / "detector")
        classifier.model.save_pretrained(root / "classifier")
        classifier.processor.save_pretrained(root / "classifier")
        del detector, classifier
        _free_memory()
        actor = {"num_cpus": 1, "num_gpus": 0.4} if args.device.startswith("cuda") else None
        models = {"detector_dir": root / "detector", "classifier_dir": root / "classifier"}
        settings = dict(
            device=args.device, actor_options=actor, max_regions=args.regions,
            detector_threshold=0.0, max_batch_size=args.serve_batch, timeout_s=600,
        )  # fmt: skip
        try:
            url = runner.start(port=free_port(), num_cpus=args.serve_cpus, **models, **settings,
                               batch_wait_timeout_s=0.005)  # fmt: skip
            photos = [_jpeg(seed) for seed in range(args.requests)]
            with (
                HttpInferenceClient(url, timeout_s=600) as client,
                ThreadPoolExecutor(args.concurrency) as pool,
            ):

                def send_all() -> None:
                    list(pool.map(lambda p: client.infer(inspection_id=str(p[0]), photos=[p[1]]),
                                  enumerate(photos)))  # fmt: skip

                rate = measure(f"end to end, {args.concurrency} concurrent, {args.regions} "
                               "regions/image", len(photos), send_all, 1)  # fmt: skip
                # The target of under 5 ms of plumbing, read where each process has a core:
                # one region, so that no second classifier batch counts as waiting.
                lone = {**settings, "max_regions": 1, "batch_wait_timeout_s": 0.0}
                runner.deploy(**models, **lone)  # user_config only: no restart
                plumbing = lone_request_plumbing(client, photos[:20])
                print(f"Serve's plumbing per lone request, no batch wait: {plumbing:.1f} ms "
                      "(HTTP, proxy and the deployment hops; target: under 5 ms)")  # fmt: skip
        finally:
            runner.stop()
    return [(f"end to end images/s ({args.regions} regions each)", args.concurrency, rate,
             "end to end")]  # fmt: skip


def lone_request_plumbing(client: Any, photos: list[bytes]) -> float:
    """Median ms of one request at a time spent outside the pipeline and in the deployment
    hops beyond the models' own compute (their timings: models.pipeline.inspect)."""
    client.infer(inspection_id="warm-up", photos=photos[:1])
    spent = []
    for index, photo in enumerate(photos):
        started = time.perf_counter()
        t = client.infer(inspection_id=f"lone-{index}", photos=[photo]).timings
        wall = (time.perf_counter() - started) * 1000
        hops = (t["detect_ms"] - t["detect_model_ms"]) + (t["classify_ms"] - t["classify_model_ms"])
        spent.append(wall - t["total_ms"] + hops)
    return statistics.median(spent)


def print_table(rows: list[tuple], device: str, tokens: int) -> None:
    print(f"\ndevice: {device}; classifier prompt: {tokens} tokens per crop for step 1")
    print(f"{'measure':<44} {'batch':>6} {'per second':>11} {'target':>8}")
    for label, batch, rate, target_key in rows:
        target = TARGETS[target_key]
        mark = "" if rate >= target else "  below target"
        print(f"{label:<44} {batch:>6} {rate:11.1f} {target:8.0f}{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny configs: a smoke run")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reason-tokens", type=int, default=32)
    parser.add_argument("--no-serve", dest="serve", action="store_false")
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--regions", type=int, default=2, help="regions per image end to end")
    parser.add_argument("--serve-batch", type=int, default=32)
    parser.add_argument("--serve-cpus", type=int, default=8)
    parser.add_argument("--scratch", default=None, help="where the saved models go (~17 GB)")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    half = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    args.detector_dtype = torch.float16 if args.device.startswith("cuda") else torch.float32
    args.classifier_dtype = half
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    detector, classifier = build_models(args)
    tokens = classifier.step1_tokens(_photo((CROP_SIDE, CROP_SIDE), 0))
    with torch.inference_mode():
        rows = bench_models(args, detector, classifier)
    if args.serve:
        rows += bench_serve(args, detector, classifier)
    print_table(rows, f"{device_name}{' (tiny configs)' if args.tiny else ''}", tokens)


def _photo(size: tuple[int, int], seed: int) -> Image.Image:
    image = Image.new("RGB", size, (60 + seed * 7 % 100, 80, 120))
    x, y = size[0] * (seed % 5) // 6, size[1] * (seed % 3) // 4
    ImageDraw.Draw(image).ellipse((x, y, x + size[0] // 8, y + size[1] // 8), fill=(130, 90, 40))
    return image


def _jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    _photo((1280, 960), seed).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _params(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _free_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
