"""Long commands show a progress bar with an ETA on stderr; --quiet silences it."""
import pytest
from click.testing import CliRunner

from dissect.cli.main import cli
from conftest import image_bytes


@pytest.mark.parametrize("quiet", [False, True])
def test_ingest_and_report_all_show_progress_unless_quiet(tmp_path, hand_ledger, quiet):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        (images / f"img{i}.png").write_bytes(image_bytes(i))
        (images / f"img{i}.txt").write_text(f"picture {i}")
    extra = ["--quiet"] if quiet else []
    ingested = CliRunner().invoke(cli, ["ingest", str(images), "--out", str(tmp_path / "d"), *extra])
    reported = CliRunner().invoke(cli, ["report", "--all", "--ledger", str(hand_ledger), "--run", "dis",
                                        "--out", str(tmp_path / "report"), *extra])
    assert ingested.exit_code == 0 and reported.exit_code == 0, ingested.output + reported.output
    for result, bar in ((ingested, "ingesting images: 100%"), (reported, "report: 100%")):
        if quiet:
            assert result.stderr == ""
        else:   # tqdm's bar: the count done of the total, and the elapsed<remaining time
            assert bar in result.stderr and "<00:00" in result.stderr
