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
                       progress=False) for prior in ("smooth", "ridge")}
    errors = {prior: relative_error(tree, sim.truth["strf"]) for prior, tree in fits.items()}
    result = compare(fits, recording=sim.recording)
    report, sizes = diagnose(fits["smooth"]), fits["smooth"].posterior.sizes
    print(f"\nrelative L2 error {errors}\n{result}\n{report}")
    assert errors["smooth"] < errors["ridge"]
    assert result.table.index[0] == "smooth"
    # Sound, not spotless: 4 of 4000 transitions diverge at target_accept 0.8 and again at 0.9,
    # at ordinary values of every hyperparameter (max r_hat 1.004, E-BFMI >= 0.87), and the
    # prior passes SBC; the bound is the project's convergence standard (< 1% divergent).
    assert report.table.rhat_ok.all()
    assert report.divergences < 0.01 * sizes["chain"] * sizes["draw"]


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
    # Recovered = the truth lies where the posterior says: on a slow natural stimulus with
    # ~5000 spikes a rank-2 STRF stays uncertain (posterior sd ~0.13 per weight, relative error
    # ~0.5), so a fixed error bound would test the data, not the sampler.
    draws = tree["posterior"]["strf"].values[:, :, 0].reshape(-1, 12, 10)
    truth = sim.truth["strf"][0]
    low, high = np.quantile(draws, [0.05, 0.95], axis=0)
    coverage = float(((truth >= low) & (truth <= high)).mean())
    z = np.abs(draws.mean(0) - truth) / draws.std(0)
    correlation = np.corrcoef(draws.mean(0).ravel(), truth.ravel())[0, 1]
    print(f"90% interval coverage {coverage:.3f}, max |z| {z.max():.2f}, "
          f"correlation {correlation:.3f}")
    assert coverage >= 0.75 and z.max() < 4 and correlation > 0.8
    # no mirrored modes: the reported singular values and vectors agree across chains
    for name in ("gain", "spectral", "temporal"):
        assert float(rhat[name].max()) < 1.01, name
