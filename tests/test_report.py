"""write_report: self-contained HTML with embedded figures, CSV/JSON summaries, no overwrite."""

import base64
import html
import json
import re
import subprocess

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from bayesstrf import compare, diagnose, fit
from bayesstrf.viz.report import write_report
from benchmarks.report import chromium
from tests.conftest import TINY_FIT


@pytest.fixture(scope="module")
def comparison(tiny_fit, tiny_simulation):
    other = fit(tiny_simulation.recording, "double_exponential", **TINY_FIT)
    return compare({"softplus": tiny_fit, "double_exponential": other},
                   recording=tiny_simulation.recording, block_bins=100)


def test_report_files(comparison, tiny_simulation, tmp_path):
    train, test = tiny_simulation.recording.split(["stim2"])
    open_figures = plt.get_fignums()
    path = write_report(comparison, train, tmp_path, test=test)
    assert plt.get_fignums() == open_figures  # arviz-plots' pyplot figures are released
    page = path.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    alts = re.findall(r'<img alt="([^"]+)"', page)
    # comparison; per model, each activation parameter per neuron and chain, and the chains
    # of the worst parameter where r_hat failed; per neuron and model STRF, nonlinearity, PSTH
    failed = [m for m, tree in comparison.fits.items() if not diagnose(tree).table.rhat_ok.all()]
    parameters = {"softplus": ("beta", "b"), "double_exponential": ("s", "a", "b")}
    assert len(images) == len(alts) == 1 + 5 + len(failed) + 2 * 2 * 3
    assert "elpd of each model" in alts
    assert {f"{v} per neuron and chain ({m})" for m, vs in parameters.items() for v in vs} <= set(
        alts)
    assert sorted(a[a.rindex("(") + 1:-1] for a in alts if a.startswith("chains of ")) == sorted(
        failed)
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    text = re.sub(r'src="data:image/png;base64,[^"]+"', "", page)  # base64 may spell http
    assert "http" not in text.replace("http-equiv", "")  # opens offline
    assert "PSIS-LOO over blocks of at most 100 bins" in page
    # the verdict comes first, before any table: the first model, its lead, the diagnostics
    verdict = page.index("<h2>Verdict</h2>")
    assert verdict < page.index("<table")
    first = comparison.table.index[0]
    assert f"Ranked first: {first}" in page[verdict:page.index("<h2>Data</h2>")]
    assert "diagnostics failed for" in page  # 40 draws per chain
    summary = pd.read_csv(tmp_path / "summary.csv", index_col=[0, 1])
    assert set(summary.index.get_level_values(0)) == {"softplus", "double_exponential"}
    assert {"elpd", "max_rhat", "cc_norm", "bits_per_spike", "lpd"} <= set(summary.columns)
    diagnostics = json.loads((tmp_path / "diagnostics.json").read_text())
    assert set(diagnostics) == {"softplus", "double_exponential"}
    assert diagnostics["softplus"]["warnings"]  # 40 draws per chain: ESS warnings expected
    assert "warning" in page


def test_existing_outputs_are_kept(comparison, tiny_simulation, tmp_path):
    (tmp_path / "summary.csv").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_report(comparison, tiny_simulation.recording, tmp_path)
    assert (tmp_path / "summary.csv").read_text() == "mine"
    assert not (tmp_path / "report.html").exists()


def test_rejects_non_comparisons(tiny_simulation, tmp_path):
    with pytest.raises(TypeError, match="comparison: expected a Comparison"):
        write_report({}, tiny_simulation.recording, tmp_path)


CHROMIUM = chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on PATH (apt install chromium)")
def test_report_renders_in_headless_chromium(comparison, tiny_simulation, tmp_path):
    """Issue 3: opened offline in a real browser, every figure decodes and the page paints."""
    path = write_report(comparison, tiny_simulation.recording, tmp_path / "report")
    probe = tmp_path / "probe.html"  # the report plus a script that counts undecodable images
    probe.write_text(path.read_text().replace("</body>", (
        "<script>window.addEventListener('load', () => { const imgs = [...document.images];"
        " document.body.insertAdjacentHTML('beforeend', '<p id=\"probe\">' + imgs.length + ':'"
        " + imgs.filter(i => !i.complete || i.naturalWidth === 0).length + '</p>'); });"
        "</script></body>")))
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access",
               "--virtual-time-budget=10000"]
    dom = subprocess.run([*browser, "--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    found, broken = map(int, re.search(r'id="probe">(\d+):(\d+)<', dom).groups())
    assert (found, broken) == (path.read_text().count("<img"), 0)  # every figure decodes
    assert found > 1 + 2 * 2 * 3  # comparison, neurons x models x 3, parameters per chain
    # the verdict is on the rendered page, before any figure
    verdict = html.escape(comparison.verdict()).lower()
    assert "Verdict" in dom and verdict in dom.lower()
    assert dom.lower().index(verdict) < dom.index("<img")
    shot = tmp_path / "shot.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1200,2400", path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    pixels = plt.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1200)
    assert (pixels.mean(-1) < 0.9).mean() > 0.02  # text, tables and figures, not a blank page


def test_given_diagnostics_are_used_and_checked(comparison, tiny_simulation, tmp_path):
    from bayesstrf import diagnose

    given = {name: diagnose(tree) for name, tree in comparison.fits.items()}
    given["softplus"].table["max_rhat"] = 9.5  # not what diagnose says: the report shows it
    write_report(comparison, tiny_simulation.recording, tmp_path / "a", diagnostics=given)
    summary = pd.read_csv(tmp_path / "a" / "summary.csv", index_col=[0, 1])
    assert (summary.loc["softplus", "max_rhat"] == 9.5).all()
    assert (summary.loc["double_exponential", "max_rhat"] < 9).all()
    with pytest.raises(ValueError, match=r"diagnostics: expected the diagnose\(\) of each fit "
                                         r"\['double_exponential', 'softplus'\], found "
                                         r"\['softplus'\]"):
        write_report(comparison, tiny_simulation.recording, tmp_path / "c",
                     diagnostics={"softplus": given["softplus"]})
