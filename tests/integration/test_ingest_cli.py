"""`loupe ingest`: a folder of photos sent to the running app as a station sends them.

Images under the folder are uploaded (other files skipped), each under its path as the
external id; a photo the app refuses is reported with the app's reason and the exit code
says so; sending the folder again finds the same inspections instead of making new ones."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.auth.service import create_station_token
from app.cli import main
from app.inspections.tables import Inspection
from tests.integration.fuzz_support import live_app  # noqa: F401 (a fixture)
from tests.support import garment_photo

pytestmark = pytest.mark.integration


def test_a_folder_is_sent_once_and_a_bad_photo_is_named_with_its_reason(
    live_app, committed_db, tmp_path, monkeypatch  # noqa: F811
):  # fmt: skip
    token = create_station_token(session=committed_db, station="dock-7")
    committed_db.commit()
    shelf = tmp_path / "returns" / "shelf-a"
    (shelf / "front").mkdir(parents=True)
    (shelf / "front" / "RMA-1.png").write_bytes(garment_photo(seed=1))
    (shelf / "RMA-2.png").write_bytes(garment_photo(seed=2))
    (shelf / "notes.txt").write_text("not a photo")
    (shelf / "RMA-3.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    monkeypatch.chdir(tmp_path)
    args = ["ingest", "returns", "--url", live_app.base_url, "--token", token,
            "--view", "front", "--var-dir", str(tmp_path / "var")]  # fmt: skip

    first = CliRunner().invoke(main, args)
    assert first.exit_code == 1, first.output
    assert "created 2, already present 0, failed 1" in first.output
    assert "failed returns/shelf-a/RMA-3.jpg: HTTP 4" in first.output  # the app's refusal
    stored = committed_db.scalars(select(Inspection.external_id).order_by(Inspection.external_id))
    assert list(stored) == ["returns/shelf-a/RMA-2.png", "returns/shelf-a/front/RMA-1.png"]

    (shelf / "RMA-3.jpg").unlink()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "created 0, already present 2, failed 0" in again.output
    assert committed_db.scalar(select(Inspection.station).limit(1)) == "dock-7"


def test_no_token_and_no_images_are_usage_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    no_token = CliRunner().invoke(main, ["ingest", str(tmp_path / "empty"),
                                         "--var-dir", str(tmp_path / "var")])  # fmt: skip
    assert no_token.exit_code == 2 and "no station token" in no_token.output
    no_images = CliRunner().invoke(main, ["ingest", str(tmp_path / "empty"), "--token", "t",
                                          "--var-dir", str(tmp_path / "var")])  # fmt: skip
    assert no_images.exit_code == 2 and "no image files found" in no_images.output
