"""What a benchmark ran on (date, machine, devices, versions, commit, command line), and how
its results are written (settings, output paths, atomic writes)."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def environment(module: str, packages: tuple[str, ...]) -> dict:
    """JSON-able description of this run of ``python -m <module>``, with ``packages``'
    versions ("absent" when not installed)."""
    import jax

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "absent"

    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
        "processor": platform.processor() or "unknown",
        "jax_backend": jax.default_backend(),
        "jax_devices": ", ".join(str(d) for d in jax.devices()),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in packages},
        "load_average": list(os.getloadavg()),
        "commit": commit,
        "command": " ".join([f"python -m {module}", *sys.argv[1:]]),
    }


def settings_and_out(parser, args, full: dict, quick: dict, name: str) -> None:
    """Fill ``args.settings`` (quick or full, then command-line overrides) and ``args.out``
    (a temporary file for ``--quick``, else ``docs/<name>.md``), refusing a bad ``--out``."""
    args.settings = {key: value if getattr(args, key, None) is None else getattr(args, key)
                     for key, value in (quick if args.quick else full).items()}
    if args.out is None:
        args.out = (Path(tempfile.gettempdir()) / f"bayesstrf-{name}-quick.md" if args.quick
                    else ROOT / "docs" / f"{name}.md")
    if args.out.suffix != ".md":
        parser.error(f"--out: expected a .md file name, found {str(args.out)!r}")
    if not args.out.parent.is_dir():
        parser.error(f"--out: expected an existing folder, found {str(args.out.parent)!r}")


@contextlib.contextmanager
def atomic(path: Path):
    """A temporary path next to ``path`` to write to; it replaces ``path`` when the block ends
    without error, so a reader never sees a half-written result."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (`atomic`)."""
    with atomic(path) as tmp:
        tmp.write_text(text)
