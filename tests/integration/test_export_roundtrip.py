"""Export and import round-trip: what `loupe export` writes from one database, `loupe import
... --as verified` brings into a fresh one as the same verified samples: the same photos
(by content hash), the same labels, every box within ROUND_TRIP_TOLERANCE_PX, verified
negatives still negatives, and nothing the first database would not export.

Both sides run as a site runs them: the command line, settings from the environment, a
real PostgreSQL each and their own bucket in moto's S3.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.cli import main
from app.config import get_settings
from app.exports.formats import ROUND_TRIP_TOLERANCE_PX
from app.learning.verified import verified_photos
from app.storage import make_store
from tests.integration.export_support import Boxes, same_boxes, seed_verified
from tests.integration.learning_support import new_bucket
from tests.support import reset_caches

pytestmark = pytest.mark.integration


def use(monkeypatch, database_url: str, bucket: str, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    """Point the command line at one site: its database and its bucket."""
    monkeypatch.setenv("LOUPE_DATABASE_URL", database_url)
    monkeypatch.setenv("LOUPE_S3_BUCKET", bucket)
    monkeypatch.setenv("LOUPE_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("LOUPE_S3_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("LOUPE_S3_SECRET_ACCESS_KEY", "testing")
    reset_caches()


def verified_in(url: str) -> dict[str, Boxes]:
    """The verified samples of a database, by photo hash: what its learning loop sees."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with Session(engine) as session:
            return {
                photo.content_hash: sorted((b.label, (b.x1, b.y1, b.x2, b.y2)) for b in photo.boxes)
                for photo in verified_photos(session=session)
            }
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("fmt", "export_options", "import_path"),
    [
        ("coco", ["--split"], ""),  # train/, val/, test/ each with annotations.json
        ("yolo", ["--split"], ""),  # data.yaml naming the three splits
        ("yolo", [], "data.yaml"),
        ("labelstudio", [], ""),
    ],
    ids=["coco-split", "yolo-split", "yolo", "labelstudio"],
)
def test_an_export_imports_back_as_the_same_verified_samples(
    committed_db, database_url, fresh_database, s3_endpoint, monkeypatch, tmp_path,
    fmt, export_options, import_path,
):  # fmt: skip
    exporting = new_bucket(s3_endpoint)
    use(monkeypatch, database_url, exporting, s3_endpoint)
    seeded = seed_verified(committed_db, make_store(get_settings()))
    committed_db.commit()
    out = tmp_path / "export"
    runner = CliRunner()
    exported = runner.invoke(main, ["export", fmt, str(out), *export_options])
    assert exported.exit_code == 0, exported.output

    fresh = fresh_database("loupe_roundtrip")
    use(monkeypatch, fresh, new_bucket(s3_endpoint), s3_endpoint)
    imported = runner.invoke(main, ["import", fmt, str(out / import_path), "--as", "verified"])
    assert imported.exit_code == 0, imported.output

    expected = {seeded.sha256[item]: boxes for item, boxes in seeded.expected.items()}
    found = verified_in(fresh)
    assert same_boxes(found, expected, ROUND_TRIP_TOLERANCE_PX), (found, expected)
    assert found[seeded.sha256[seeded.frozen]]  # boxes of every split came back
    assert [] in found.values()  # the clean pass is still a verified negative
    monkeypatch.undo()
    reset_caches()
