"""bayesstrf: Bayesian spectro-temporal receptive fields (linear-nonlinear-Poisson, NUTS)."""

__version__ = "0.1.0"
