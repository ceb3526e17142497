"""Generated requests against the running app, as every role: never a 5xx, and every answer
is one the OpenAPI spec documents (status, content type, body schema, headers).

The callers: anonymous (every route, to be refused), a station with its token, and a logged-in
inspector, lead, ml and admin user with their CSRF token (the routes ACCESS lets them use).
A short run (4 cases per role and operation) is part of `make test`; `make fuzz` runs 20 each,
at least 1,000 requests, and prints the requests and statuses per role and operation.
LOUPE_FUZZ_SEED replays a run: the seed is printed with the outcome.
"""

from __future__ import annotations

import os
import random

import pytest
import schemathesis
from sqlalchemy import select

from app.auth.service import create_station_token, create_user
from app.auth.tables import StationToken
from app.spec import full_spec
from app.storage import get_store
from tests.integration import fuzz_support as fz
from tests.integration.test_instructions import build, seed
from tests.integration.web_support import PASSWORD, stored_item

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("LOUPE_FUZZ_EXAMPLES", "4"))
MIN_REQUESTS = int(os.environ.get("LOUPE_FUZZ_MIN_REQUESTS", "250"))
# In this order, after the anonymous caller and the station: the admin, who changes users
# and tokens, comes last.
ROLES = ("inspector", "lead", "ml", "admin")
TARGETS = ("target-a", "target-b")  # users the admin's fuzzing may disable or change


live_app = fz.live_app  # fixture


def _seed(session):
    """A user per role, the admin's targets, a station token, items to review, and an
    instruction snapshot (the newest, which /ml/instructions shows)."""
    accounts = [(role, role) for role in ROLES] + [(name, "inspector") for name in TARGETS]
    users = {
        name: create_user(session=session, username=name, password=PASSWORD, role=role)
        for name, role in accounts
    }
    token = create_station_token(session=session, station="fuzz-dock")
    create_station_token(session=session, station="fuzz-spare")
    for n in range(3):
        stored_item(session, name=f"fuzz-{n}")
    seed(session, get_store())
    build(session, get_store())
    session.commit()
    token_ids = dict(session.execute(select(StationToken.station, StationToken.id)).all())
    return users, token, token_ids


def test_every_role_fuzzed_without_server_errors(live_app, committed_db):
    users, token, token_ids = _seed(committed_db)
    # The whole app, pages included: GET /openapi.json is the API part alone.
    schema = schemathesis.openapi.from_dict(full_spec(live_app.app))
    base_url = live_app.base_url
    # Log everyone in before the anonymous caller's wrong passwords count against 127.0.0.1.
    callers = [fz.anonymous(base_url), fz.station(token)]
    callers += [fz.logged_in(base_url, role, role, PASSWORD) for role in ROLES]
    fuzz_seed = int(os.environ.get("LOUPE_FUZZ_SEED") or random.randrange(2**32))
    fuzzer = fz.Fuzzer(base_url, EXAMPLES, fuzz_seed)
    # The admin's fuzzing never changes the fuzzing users or revokes the station's token:
    # those ids are sent as a target's instead.
    targets = [users[t].id for t in TARGETS]
    fuzzer.remap = {
        "user_id": {u.id: targets[i % len(targets)] for i, u in enumerate(users.values())
                    if u.username not in TARGETS},
        "token_id": {token_ids["fuzz-dock"]: token_ids["fuzz-spare"]},
    }  # fmt: skip
    ended = []
    for caller in callers:
        for result in schema.get_all_operations():
            operation = result.ok()
            if caller.may_call(operation.method.upper(), operation.path):
                fuzzer.run(operation, caller)
        if not fz.still_logged_in(base_url, caller):
            ended.append(caller.role)
    outcome = fuzzer.outcome
    print(f"\nseed {fuzz_seed}, {EXAMPLES} examples per operation\n{outcome.table()}")
    assert ended == [], "the fuzzing ended these roles' sessions: the rest tested little"
    assert not outcome.failures, outcome.summary()
    assert outcome.requests >= MIN_REQUESTS
