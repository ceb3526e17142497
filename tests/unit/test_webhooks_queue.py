"""Webhook deliveries have a queue and a worker of their own, wherever Loupe runs: a
receiver that takes its whole timeout must never hold a slot that inspections wait for."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _queues(argv: list[str]) -> set[str]:
    return set(argv[argv.index("-Q") + 1].split(",")) if "-Q" in argv else set()


def test_deliveries_are_routed_to_the_webhooks_queue():
    from app.task_names import DELIVER_WEBHOOK, RUN_INFERENCE
    from workers.celery_app import INFERENCE_QUEUE, WEBHOOK_QUEUE, celery

    router = celery.amqp.router
    assert router.route({}, DELIVER_WEBHOOK)["queue"].name == WEBHOOK_QUEUE
    assert router.route({}, RUN_INFERENCE)["queue"].name == INFERENCE_QUEUE != WEBHOOK_QUEUE


def test_loupe_run_and_compose_each_run_one_worker_for_the_webhooks_queue_alone(tmp_path):
    import yaml

    from app.standalone import Stack, StackOptions
    from workers.celery_app import INFERENCE_QUEUE, WEBHOOK_QUEUE

    stack = Stack(StackOptions(var_dir=tmp_path / "var"))
    stack.env = {}
    children = {name: _queues(argv) for name, argv in stack._commands()}
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    compose = {name: _queues(s.get("command") or []) for name, s in services.items()}
    for consumers in (children, compose):
        webhook_workers = [name for name, queues in consumers.items() if WEBHOOK_QUEUE in queues]
        assert len(webhook_workers) == 1, consumers
        assert consumers[webhook_workers[0]] == {WEBHOOK_QUEUE}
        assert any(INFERENCE_QUEUE in queues for queues in consumers.values())
