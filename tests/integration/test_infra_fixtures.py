"""The test infrastructure itself: real services, isolation between tests, clean shutdown."""

from __future__ import annotations

import boto3
import psutil
import pytest
import redis
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from app.auth.service import create_user
from app.auth.tables import User
from app.config import redis_client_url
from app.embedded import EmbeddedPostgres, EmbeddedRedis, ensure_database, migrate


def users_seen_from_outside(database_url: str) -> int:
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as conn:
        count = conn.scalar(select(func.count()).select_from(User))
    engine.dispose()
    return int(count or 0)


def test_db_session_commits_stay_inside_the_test(db_session, database_url):
    create_user(session=db_session, username="amira", password="s3cret-pass", role="inspector")
    db_session.commit()  # releases a savepoint; the outer transaction is rolled back later

    with pytest.raises(IntegrityError):
        create_user(session=db_session, username="amira", password="s3cret-pass", role="ml")
    db_session.rollback()  # back to the savepoint: the first user is still there

    assert db_session.scalar(select(User.username)) == "amira"
    assert users_seen_from_outside(database_url) == 0


def test_committed_db_rows_are_visible_to_other_connections(committed_db, database_url):
    create_user(session=committed_db, username="jun", password="s3cret-pass", role="ml")
    committed_db.commit()
    assert users_seen_from_outside(database_url) == 1


def test_committed_db_left_no_rows_behind(database_url):
    assert users_seen_from_outside(database_url) == 0


def test_redis_url_is_a_real_empty_redis(redis_url):
    client = redis.Redis.from_url(redis_client_url(redis_url))
    assert client.ping()
    client.set("loupe:test", "1")
    assert client.get("loupe:test") == b"1"
    client.close()


def test_s3_endpoint_stores_and_returns_objects(s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="infra-test")
    s3.put_object(Bucket="infra-test", Key="photos/a.png", Body=b"\x89PNG...")
    body = s3.get_object(Bucket="infra-test", Key="photos/a.png")["Body"].read()
    assert body == b"\x89PNG..."


def test_embedded_servers_start_migrate_and_stop_without_leftovers(tmp_path):
    """The fallback used by `make run` and by machines without their own servers."""
    postgres, redis_server = EmbeddedPostgres(tmp_path / "pg"), EmbeddedRedis(tmp_path / "redis")
    try:
        url = ensure_database(postgres.start(), "loupe")
        migrate(url, configure_logging=False)
        engine = create_engine(url, poolclass=NullPool)
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
        engine.dispose()
        client = redis.Redis.from_url(redis_client_url(redis_server.start()))
        assert client.ping()
        client.close()
        pids = [postgres._server.get_pid(), redis_server._client.pid]
    finally:
        redis_server.stop()
        postgres.stop()
    assert [pid for pid in pids if running(pid)] == []


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
