"""The catalogue of reported metrics: one entry per figure, read by the tables, the plots and `compare`.

Each metric names its column, its label and unit (axis labels and table heads are built from them), the
columns holding its 95% interval, and which direction is worse. Every kind of run has its own catalogue
and the keys that identify one cell of it, so `compare` matches like with like:

    variance     a `python -m benchmarks.variance` sweep: a cell is (estimator, hyperparameters,
                 problem, S, device, dtype)
    vae          a `python -m benchmarks.vae` run: a cell is (estimator, hyperparameters, latent, KL
                 form, S, device) at its last evaluation point
    trajectory   a `python -m benchmarks.trajectory` run: a cell is (estimator, hyperparameters,
                 problem) at its last step
    benchmark    a `pytest --benchmark-json` file: a cell is one benchmark (its full name); the
                 interval of a round time is the interquartile range of its rounds (none with
                 one round), a speed goal's is its own and its worse side is the goal's own
                 direction (">=": lower is worse, "<=": higher is worse)
"""
from __future__ import annotations

import dataclasses

Z95 = 1.959964  # a 95% normal interval: value -+ Z95 * standard error


@dataclasses.dataclass(frozen=True)
class Metric:
    """One reported figure. `lo` / `hi` name the columns of its 95% interval, or `se` the column of
    its standard error (interval: value -+ 1.96 se); neither: no interval. `worse` is "higher" or
    "lower"; `unit` is '' for a pure number."""

    name: str
    label: str
    unit: str
    worse: str
    lo: str | None = None
    hi: str | None = None
    log_scale: bool = True
    short: str = ""
    se: str | None = None

    @property
    def larger_is_worse(self) -> bool:
        return self.worse == "higher"

    @property
    def axis_label(self) -> str:
        """'gradient variance, trace of the covariance (gradient units^2)'."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def short_axis_label(self) -> str:
        """'variance (gradient units^2)': for panels whose column head says the rest."""
        short = self.short or self.name
        return f"{short} ({self.unit})" if self.unit else short

    def interval(self, frame):
        """Each row's 95% interval as two columns (low, high) of `frame` (a DataFrame): its lo / hi
        columns, or value -+ 1.96 se; None where the metric or this frame has neither."""
        if self.lo and self.hi and self.lo in frame and self.hi in frame:
            return frame[self.lo], frame[self.hi]
        if self.se and self.se in frame:
            margin = Z95 * frame[self.se]
            return frame[self.name] - margin, frame[self.name] + margin
        return None


def _with_interval(name: str, label: str, unit: str, worse: str, **extra) -> Metric:
    return Metric(name, label, unit, worse, f"{name}_lo", f"{name}_hi", **extra)


GRAD = "grad. units"  # the objective's units per unit of the parameters
VARIANCE = {m.name: m for m in (
    _with_interval("variance_trace", "gradient variance, trace of the covariance", f"{GRAD}^2", "higher",
                   short="variance"),
    _with_interval("bias_norm", "bias ||E g - g*||", GRAD, "higher", short="bias"),
    _with_interval("mse", "mean squared error E||g - g*||^2", f"{GRAD}^2", "higher", short="MSE"),
    _with_interval("rel_bias", "relative bias ||E g - g*|| / ||g*||", "", "higher"),
    _with_interval("snr", "signal-to-noise ||E g||^2 / variance", "", "lower"),
    Metric("cosine", "cosine of E g to g*", "", "lower", log_scale=False, short="cosine to g*"),
    Metric("time_per_estimate_s", "time per estimate", "s", "higher",
           "time_per_estimate_min_s", "time_per_estimate_max_s"),
    Metric("variance_x_time", "variance x time per estimate", f"{GRAD}^2 s", "higher"),
    Metric("mse_x_time", "MSE x time per estimate (work-normalised)", f"{GRAD}^2 s", "higher",
           "mse_x_time_lo", "mse_x_time_hi"),
)}

VAE = {m.name: m for m in (
    # Per-run figures without an interval of their own: with several seeds, the spread over seeds.
    Metric("test_neg_elbo", "test -ELBO", "nats", "higher", log_scale=False),
    # the importance-weighted bound on test -log p(x), at a run's last point; its standard error is
    # over the test points
    Metric("test_iw_bound", "test -log p(x), importance-weighted bound", "nats", "higher", log_scale=False,
           se="test_iw_bound_se"),
    Metric("train_neg_elbo", "training -ELBO", "nats", "higher", log_scale=False),
    Metric("time_per_step_s", "time per training step", "s", "higher"),
    _with_interval("grad_variance_trace", "encoder gradient variance, trace", f"{GRAD}^2", "higher"),
    _with_interval("grad_bias_norm", "encoder gradient bias ||E g - g*||", GRAD, "higher"),
    _with_interval("grad_mse", "encoder gradient MSE", f"{GRAD}^2", "higher"),
)}

TRAJECTORY = {m.name: m for m in (
    Metric("exact_loss", "exact objective E f at the parameters", "", "higher", log_scale=False),
    Metric("exact_grad_norm", "exact gradient norm", GRAD, "higher"),
    Metric("train_seconds", "training time", "s", "higher"),
    # fresh estimates at each measurement point, with the sweep's definitions and intervals
    VARIANCE["variance_trace"], VARIANCE["bias_norm"], VARIANCE["mse"],
)}

BENCHMARK = {m.name: m for m in (
    Metric("median_s", "median round time", "s", "higher", "q1_s", "q3_s"),
    Metric("estimates_per_s", "estimates per second", "1/s", "lower", "estimates_per_s_lo", "estimates_per_s_hi"),
    # A speed goal's direction is its own (">=" or "<="): compare reads it from the goal's row.
    Metric("ratio", "speed-goal ratio", "", "higher", "ratio_low", "ratio_high", log_scale=False),
)}

CATALOGUES: dict[str, dict[str, Metric]] = {
    "variance": VARIANCE, "vae": VAE, "trajectory": TRAJECTORY, "benchmark": BENCHMARK}

CELL_KEYS: dict[str, list[str]] = {
    "variance": ["estimator", "hparams", "objective", "n_samples", "device", "dtype"],
    "vae": ["estimator", "hparams", "latent", "kl", "n_samples", "device"],
    "trajectory": ["estimator", "hparams", "problem"],
    "benchmark": ["name"],
}


def metric(kind: str, name: str) -> Metric:
    """The catalogue entry, or a KeyError that lists the kind's metrics."""
    catalogue = CATALOGUES[kind]
    if name not in catalogue:
        raise KeyError(f"{kind} runs have no metric {name!r}; they report {', '.join(catalogue)}")
    return catalogue[name]
