"""JAX's persistent compilation cache: where it lives, how it is switched off, that it fills."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bayesstrf.compilation import cache_dir

PROBE = """
import bayesstrf, jax, jax.numpy as jnp
bayesstrf.enable_compilation_cache()
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # the probe compiles fast
f = jax.jit(lambda x: jnp.linalg.slogdet(x @ x.T + jnp.eye(x.shape[0]))[1])
f(jnp.ones((40, 40)))
print(jax.config.jax_compilation_cache_dir)
"""


@pytest.mark.parametrize(("env", "expected"), [
    ({"BAYESSTRF_COMPILATION_CACHE": "/some/where"}, Path("/some/where")),
    ({"BAYESSTRF_COMPILATION_CACHE": "off"}, None),
    ({"BAYESSTRF_COMPILATION_CACHE": ""}, None),
    ({"XDG_CACHE_HOME": "/xdg"}, Path("/xdg/bayesstrf/xla")),
    ({"HOME": "/home/u"}, Path("/home/u/.cache/bayesstrf/xla")),
])
def test_cache_dir_follows_the_environment(monkeypatch, env, expected):
    for name in ("BAYESSTRF_COMPILATION_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cache_dir() == expected


def _probe(tmp_path, **env) -> tuple[str, list[Path]]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("BAYESSTRF_COMPILATION_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True,
                         text=True, check=True).stdout.strip()
    return out, sorted(tmp_path.rglob("*"))


def test_importing_bayesstrf_leaves_jax_as_it_was(tmp_path):
    """No process-wide setting at import: the cache is the user's choice."""
    environ = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    code = ("import jax, bayesstrf; bayesstrf.fit; bayesstrf.compare; "
            "print(jax.config.jax_compilation_cache_dir)")
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "None"


def test_enabling_the_cache_turns_it_on_and_it_fills(tmp_path):
    folder = tmp_path / "xla"
    out, files = _probe(tmp_path, BAYESSTRF_COMPILATION_CACHE=str(folder))
    assert out == str(folder)
    assert any("slogdet" in path.name or "lambda" in path.name for path in files), files


def test_the_cache_can_be_switched_off_and_a_users_own_is_kept(tmp_path):
    out, files = _probe(tmp_path, BAYESSTRF_COMPILATION_CACHE="off")
    assert out == "None" and files == []
    own = tmp_path / "mine"
    out, _ = _probe(tmp_path, BAYESSTRF_COMPILATION_CACHE=str(tmp_path / "ours"),
                    JAX_COMPILATION_CACHE_DIR=str(own))
    assert out == str(own) and not (tmp_path / "ours").exists()


def test_the_command_line_turns_the_cache_on(tmp_path, monkeypatch):
    import bayesstrf.compilation
    from bayesstrf.cli.main import main

    calls = []
    monkeypatch.setattr(bayesstrf.compilation, "enable_compilation_cache",
                        lambda: calls.append(True))
    assert main(["simulate", "--out", str(tmp_path / "sim.npz"), "--neurons", "1", "--freqs",
                 "4", "--lags", "3", "--time", "200", "--quiet"]) == 0
    assert calls == [True]
