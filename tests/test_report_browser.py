"""The report's index.html in a real headless browser (Debian's chromium): every image loads,
every link resolves, and nothing needs the network (every host name fails to resolve)."""
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from dissect.cli.main import cli

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium")

# Loads the report in a frame and lists each image and link with whether it loaded.
CHECKER = """<!doctype html><meta charset="utf-8"><body><script>
const frame = document.createElement('iframe');
frame.src = 'INDEX';
frame.onload = () => {
  const doc = frame.contentDocument, lines = [];
  for (const img of doc.images)
    lines.push('img ' + img.getAttribute('src') + ' ' + (img.complete && img.naturalWidth > 0 ? 'ok' : 'broken'));
  for (const a of doc.querySelectorAll('a[href]')) {
    const request = new XMLHttpRequest();
    let ok = false;
    try { request.open('GET', a.href, false); request.send(); ok = request.responseText.length > 0; } catch (e) {}
    lines.push('link ' + a.getAttribute('href') + ' ' + (ok ? 'ok' : 'broken'));
  }
  const pre = document.createElement('pre');
  pre.id = 'result';
  pre.textContent = lines.join('\\n');
  document.body.appendChild(pre);
};
document.body.appendChild(frame);
</script></body>"""


def loaded(report, tmp_path) -> list[str]:
    checker = tmp_path / "check.html"
    checker.write_text(CHECKER.replace("INDEX", (report / "index.html").as_uri()))
    proc = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                           "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000", "--dump-dom",
                           checker.as_uri()], capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert '<pre id="result">' in dom, proc.stderr[-2000:]
    return dom.split('<pre id="result">', 1)[1].split("</pre>", 1)[0].splitlines()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium: `make test` installs it where it may")
def test_every_image_and_link_of_the_report_loads_offline(hand_ledger, tmp_path):
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", "--all", "--ledger", str(hand_ledger), "--run", "dis",
                                      "--out", str(report), "--quiet"])
    assert result.exit_code == 0, result.output
    lines = loaded(report, tmp_path)
    drawn = sorted(p.name for p in report.glob("*.png"))
    assert sorted(line.split()[1] for line in lines if line.startswith("img ")) == drawn and drawn
    assert len([line for line in lines if line.startswith("link ")]) == len(drawn)
    assert all(line.endswith(" ok") for line in lines), lines
    # and the check fails where an image is gone
    (report / drawn[0]).unlink()
    assert f"img {drawn[0]} broken" in loaded(report, tmp_path)
