"""JAX's persistent compilation cache, switched on by the command line or on request.

Compiling NUTS costs more than sampling a small problem. The compiled programs of bayesstrf take the
data and priors as arguments (`bayesstrf.inference.nuts.advance`), so identical programs recur:
across warmup stages and sampling and, for recordings of the same shapes, across fits and sessions.
JAX's persistent cache keys compiled programs by their content and finds them on disk instead of
compiling again.

The cache lives in ``$BAYESSTRF_COMPILATION_CACHE`` (default
``${XDG_CACHE_HOME:-~/.cache}/bayesstrf/xla``), capped at 2 GiB (least recently used entries
are evicted); ``BAYESSTRF_COMPILATION_CACHE=off`` switches it off. A cache the user has set
already (``jax_compilation_cache_dir`` or ``JAX_COMPILATION_CACHE_DIR``) is left as it is.

The cache is process-wide: it holds every program of the process, the user's own too, so the
library does not switch it on by itself. The ``bayesstrf`` command line does; in Python or a
notebook, call ``bayesstrf.enable_compilation_cache()`` first, before anything compiles (JAX
reads the setting on its first compilation).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

#: Every program is kept, small ones too: a tiny fit compiles 35 programs, 8.5 s of
#: compilation that the cache turns into 0.4 s of reads (this CPU, `docs/compile-time.md`).
MIN_COMPILE_SECONDS = 0.0
MAX_BYTES = 2 * 1024**3


def cache_dir() -> Path | None:
    """Where bayesstrf keeps compiled programs, or None when switched off."""
    chosen = os.environ.get("BAYESSTRF_COMPILATION_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "0", "off", "false", "no") else Path(
            chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bayesstrf" / "xla"


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at `cache_dir` unless one is set already.

    Returns
    -------
    Path or None
        The cache folder in use, None when there is none.
    """
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    folder = cache_dir()
    if folder is None:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return folder
