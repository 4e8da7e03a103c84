"""`dissect fetch` against a local HTTP server: generated images, one 404, one corrupt file."""
import functools
import http.server
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dissect.cli.main import cli
from conftest import image_bytes


@pytest.fixture
def server(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    for i in range(6):
        (site / f"img{i}.png").write_bytes(image_bytes(i))
    (site / "broken.jpg").write_bytes(b"this is not a jpeg")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fetch_downloads_ingests_and_counts_what_failed(server, tmp_path):
    urls = [f"{server}/img{i}.png" for i in range(6)] + [f"{server}/missing.png", f"{server}/broken.jpg"]
    uids = [f"{i:032x}" for i in range(len(urls))]   # DataComp's uid: 32 hex digits
    pq.write_table(pa.table({"url": urls, "caption": [f"picture {i}" for i in range(len(urls))], "uid": uids}),
                   tmp_path / "urls.parquet")
    out = tmp_path / "fetched"
    result = CliRunner().invoke(cli, ["fetch", str(tmp_path / "urls.parquet"), "--out", str(out),
                                      "--image-size", "32", "--threads", "2", "--timeout", "5"])
    assert result.exit_code == 0, result.output
    manifest = pq.read_table(out / "dataset" / "samples.parquet")
    assert manifest.num_rows == 6
    assert sorted(manifest["caption"].to_pylist()) == [f"picture {i}" for i in range(6)]
    # each sample keeps the URL it came from and its uid, so the ledger joins back to the URL list
    assert sorted(zip(manifest["url"].to_pylist(), manifest["uid"].to_pylist())) == sorted(zip(urls[:6], uids[:6]))
    skipped = pq.read_table(out / "dataset" / "skipped.parquet").to_pylist()
    assert sorted(r["source"] for r in skipped) == sorted(urls[6:])
    assert all(r["reason"].startswith("download failed") for r in skipped)
    assert "6 samples; skipped 2" in result.output

    ledger_dir = tmp_path / "ledger"
    # the folder fetch wrote trains as it is: its dataset is found inside
    result = CliRunner().invoke(cli, ["train", str(out), "--strategy", "random", "--epochs", "1",
                                      "--batch-size", "3", "--ledger", str(ledger_dir), "--run", "r",
                                      "--workers", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "as `dissect fetch` and `dissect make-emoji` write it" in result.output
    skipped_line = next(line for line in result.output.splitlines() if line.startswith("skipped: "))
    assert skipped_line.count("download failed") == 2 or skipped_line.startswith("skipped: 2 download failed")


def test_fetch_refuses_a_missing_url_list(tmp_path):
    result = CliRunner().invoke(cli, ["fetch", str(tmp_path / "none.parquet"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no URL list" in result.output
