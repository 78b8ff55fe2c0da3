"""Issue 5, slow lane: the smooth prior beats ridge on a smooth truth with little data, and
rank-matched low-rank fits recover rank-1 and rank-2 truths without mirrored chains."""

import arviz_stats as azs
import numpy as np
import pytest

from bayesstrf import compare, diagnose, fit, simulate

pytestmark = pytest.mark.slow


def relative_error(tree, truth: np.ndarray) -> float:
    mean = tree["posterior"]["strf"].mean(("chain", "draw")).values
    return float(np.linalg.norm(mean - truth) / np.linalg.norm(truth))


def test_smooth_prior_beats_ridge_on_a_short_recording():
    sim = simulate("softplus", n_neurons=1, n_freq=24, n_lags=16, n_time=5000, seed=3)
    fits = {prior: fit(sim.recording, "softplus", strf=prior, n_lags=16, seed=0,
                       progress=False) for prior in ("ridge", "smooth")}
    errors = {prior: relative_error(tree, sim.truth["strf"]) for prior, tree in fits.items()}
    result = compare(fits, recording=sim.recording)
    print(f"\nrelative L2 error {errors}\n{result}")
    assert errors["smooth"] < errors["ridge"]
    assert result.table.index[0] == "smooth"
    assert diagnose(fits["smooth"]).divergences == 0


@pytest.mark.parametrize("rank", [1, 2])
def test_lowrank_recovers_a_rank_matched_truth(rank):
    freq, lag = np.arange(12)[:, None], np.arange(10)[None, :]
    components = [np.exp(-((freq - 4) / 1.5) ** 2 / 2) * np.exp(-((lag - 2) / 1.2) ** 2 / 2),
                  -0.6 * np.exp(-((freq - 8) / 1.5) ** 2 / 2) * np.exp(-((lag - 5) / 1.5) ** 2)]
    truth_shape = sum(components[:rank])[None]
    assert np.linalg.matrix_rank(truth_shape[0], tol=1e-8) == rank
    sim = simulate("sigmoid", n_neurons=1, n_freq=12, n_lags=10, n_time=20000, seed=rank,
                   strf=truth_shape)
    tree = fit(sim.recording, "sigmoid", strf=f"lowrank:{rank}", n_lags=10, seed=0,
               progress=False)
    posterior = tree["posterior"].to_dataset()
    rhat = azs.rhat(posterior)
    print(f"\nrank {rank}: max r_hat {float(rhat.to_array().max()):.4f}, "
          f"relative error {relative_error(tree, sim.truth['strf']):.3f}")
    assert float(rhat.to_array().max()) < 1.01
    assert diagnose(tree).divergences == 0
    mean = tree["posterior"]["strf"].mean(("chain", "draw")).values.ravel()
    assert np.corrcoef(mean, sim.truth["strf"].ravel())[0, 1] > 0.9
    # no mirrored modes: r_hat of the sign-fixed factors and of the gains (sign-free)
    for name in ("gain", "spectral", "temporal"):
        assert float(rhat[name].max()) < 1.01, name
