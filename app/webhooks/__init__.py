"""Webhooks: each final decision, POSTed signed to the receivers an admin registered.

The path of one event: the deciding transaction writes it with its deliveries and their
outbox rows (events.py); the relay hands each to the `webhooks` queue; the worker claims
the delivery, builds the body once (body.py), signs and sends it, logs the attempt and
asks for a retry with backoff (delivery.py; the rules are app/policy/webhooks.py). Admins
manage endpoints, read the log and replay on /admin/webhooks (views.py) or with
`loupe webhooks` (cli.py); both go through service.py.
"""
