"""JAX's persistent compilation cache: where it lives, how it is switched off, that it fills."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bayesstrf.compilation import cache_dir

PROBE = """
import bayesstrf, jax, jax.numpy as jnp
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


def test_importing_bayesstrf_turns_the_cache_on_and_it_fills(tmp_path):
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
