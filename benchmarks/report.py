"""Report at population scale: the size of `write_report`'s page for many neurons, the time to
write it, and the time headless Chromium takes to load and paint it (issue 22's target: 100
neurons under 10 MB, rendered in under 5 s).

Run from the repository root::

    python -m benchmarks.report                  # 100 neurons, 3 families; docs/report-scale.md
    python -m benchmarks.report --neurons 40 --out /tmp/report.md

One simulated recording (softplus, F=16, L=12), each family fitted with very short chains (the
page, not the posterior, is measured: 4 chains x (30 + 30), tree depth at most 5), one
`compare` (PSIS-LOO), one `write_report`. Chromium opens the page offline three times; the
in-page time is `performance.now()` at the window's load event (every image decoded), the
process time is the whole headless run (start, load, paint, exit).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.environment import ROOT, environment, write_atomic

FAMILIES = ("sigmoid", "double_exponential", "softplus")
SETTINGS = dict(n_lags=12, chains=4, warmup=30, draws=30, max_tree_depth=5, seed=0,
                progress=False)
PROBE = ("<script>window.addEventListener('load', () => { const t = performance.now();"
         " const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0);"
         " document.body.insertAdjacentHTML('beforeend', '<p id=\"probe\">' + t.toFixed(0) + ':'"
         " + document.images.length + ':' + broken.length + '</p>'); });</script></body>")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--neurons", type=int, default=100, help="simulated neurons (100)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report-scale.md",
                        help="markdown file to write, the JSON next to it")
    args = parser.parse_args(argv)
    if args.neurons < 1:
        parser.error(f"--neurons: expected a positive integer, found {args.neurons}")
    if args.out.suffix != ".md" or not args.out.parent.is_dir():
        parser.error(f"--out: expected a .md file in an existing folder, found {args.out}")
    return args


def chromium() -> str | None:
    """The path of a headless-capable Chromium on PATH, or None."""
    return next((shutil.which(name) for name in ("chromium", "chromium-browser",
                                                  "google-chrome") if shutil.which(name)), None)


def render(browser: str, page: Path) -> dict:
    """One headless load of ``page`` (with the probe): in-page and process seconds."""
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE))
    start = time.perf_counter()
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--allow-file-access", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    process = time.perf_counter() - start
    found = re.search(r'id="probe">(\d+):(\d+):(\d+)<', dom)
    if found is None:
        raise RuntimeError("the page's load event did not fire before Chromium exited")
    load_ms, images, broken = map(int, found.groups())
    return {"load_s": load_ms / 1000, "process_s": process, "images": images, "broken": broken}


def markdown(result: dict, env: dict) -> str:
    r = result
    renders = r["renders"]
    lines = [
        "# The report at population scale",
        "",
        f"Written by `{env['command']}` on {env['date']} (commit {env['commit']}).",
        f"Machine: {env['machine']}; Python {env['python']}; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + f". Load average at the start: {', '.join(f'{v:.1f}' for v in env['load_average'])}.",
        "",
        f"- Recording: {r['neurons']} simulated neurons (softplus, {r['n_freq']} x "
        f"{r['n_lags']}, {r['n_time']} bins); families {', '.join(r['families'])}, each fitted "
        f"with {SETTINGS['chains']} chains x ({SETTINGS['warmup']} + {SETTINGS['draws']}) "
        f"(the page is measured, not the posterior) in {r['fit_s']:.0f} s; compared by "
        f"{r['method']} in {r['compare_s']:.0f} s.",
        f"- `write_report`: **{r['bytes'] / 1e6:.2f} MB** (target < 10 MB), {r['images']} "
        f"figures, written in {r['report_s']:.1f} s.",
    ]
    if renders:
        loads = [x["load_s"] for x in renders]
        process = statistics.median(x["process_s"] for x in renders)
        lines.append(
            f"- Headless Chromium ({r['browser']}), {len(renders)} loads: load event after "
            f"**{statistics.median(loads):.2f} s** (median; "
            f"{', '.join(f'{t:.2f}' for t in loads)}), target < 5 s; whole process (start, "
            f"load, paint, exit) {process:.2f} s; {renders[0]['images']} images decoded, "
            f"{max(x['broken'] for x in renders)} broken.")
    else:
        lines.append("- Headless Chromium: not on PATH, the load time was not measured.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = environment("benchmarks.report", ("jax", "numpyro", "arviz-plots", "matplotlib"))
    import bayesstrf
    from bayesstrf.viz.report import write_report

    sim = bayesstrf.simulate("softplus", n_neurons=args.neurons, n_freq=16, n_lags=12,
                             n_time=2000, n_trials=2, n_segments=4, seed=0)
    start = time.perf_counter()
    fits = {family: bayesstrf.fit(sim.recording, family, **SETTINGS) for family in FAMILIES}
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    comparison = bayesstrf.compare(fits, recording=sim.recording, method="loo")
    compare_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        page = write_report(comparison, sim.recording, Path(folder))
        report_s = time.perf_counter() - start
        text = page.read_text()
        browser = chromium()
        renders = [render(browser, page) for _ in range(3)] if browser else []
    result = {
        "neurons": args.neurons, "n_freq": 16, "n_lags": 12, "n_time": 2000,
        "families": list(FAMILIES), "fit_s": fit_s, "compare_s": compare_s,
        "method": comparison.method.split(";")[0], "report_s": report_s,
        "bytes": len(text.encode()), "images": text.count("<img"), "browser": browser,
        "renders": renders,
    }
    write_atomic(args.out.with_suffix(".json"),
                 json.dumps({"environment": env, "result": result}, indent=1))
    write_atomic(args.out, markdown(result, env))
    print(markdown(result, env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
