"""Bias, variance and error of N gradient estimates against the exact gradient, with intervals.

From estimates g_1..g_N in R^P (rows of `estimates`) and the exact gradient g*:

    variance_trace   = sum_p Var_p                      (sample variance, ddof = 1) = E||g - E g||^2
    variance_mean    = variance_trace / P;  variance_max = max_p Var_p
    bias_norm        = ||mean(g) - g*||;    rel_bias = bias_norm / ||g*||
    bias_sq_debiased = ||mean(g) - g*||^2 - variance_trace / N   (the Monte Carlo floor removed)
    bias_z_max       = max_p (|mean_p - g*_p| - r)+ / sqrt(Var_p / N), r the float rounding of the estimates
                       (a bias counts only beyond it); bias_significant when it exceeds the
                       Bonferroni critical value at family-wise level 0.999 (for embedded estimates,
                       whose coordinates mean nothing: when bias_norm exceeds its 0.999 radius)
    mse              = mean_i ||g_i - g*||^2;  cosine = cos(mean(g), g*);  snr = ||mean(g)||^2 / variance_trace

Intervals (95%). For variance_trace, mse and snr: bootstrap intervals over the N estimates, each
widened where needed to hold its own point figure (see bootstrap_interval):
    mse:            percentile (the resampled mean is unbiased for the sample's);
    variance_trace: percentile of the resampled variances times N / (N - 1): a resample's ddof-1 variance
                    averages (1 - 1/N) times the sample's, which shifted the interval below the estimate by
                    as much as its half-width at N = 200, P = 128 (REINFORCE on poly-2: coverage 0.55 in a
                    simulation, 0.96 rescaled);
    snr:            percentile of the resampled SNRs moved down by 2/N, at least 0: ||mean(g)||^2 over-estimates
                    ||E g||^2 by tr(Cov)/N, so snr over-estimates the true SNR by about 1/N, and a resample
                    over-estimates snr by 1/N again. The plain percentile interval sat near SNR + 2/N and covered
                    the true SNR of REINFORCE on poly-2 (2.4e-6) in 0 of 400 simulated runs at N = 200, 1000 and
                    10,000; moved, it covered in 0.90-1.0 of them over six estimator-problem pairs at N = 200
                    (the plain one: 0 to 0.98) and 0.94-1.0 at N = 1000. (The basic and the bias-corrected
                    intervals did worse: 0.70 and 0.79 in places.)
For bias_norm (and rel_bias) the percentile bootstrap is wrong near zero bias (the
resampled norm is pushed up by the noise of the mean, so the interval can miss the estimate and 0),
so we use the triangle inequality: | ||mean - g*|| - ||E g - g*|| | <= ||mean - E g|| = r, and r^2 is
a quadratic form in a Gaussian vector whose 95% quantile we take from the Satterthwaite
scaled-chi-square with the same mean tr(S)/N and variance 2 tr(S^2)/N^2 (S the sample covariance):
an interval [max(0, bias_norm - r95), bias_norm + r95] that always holds the estimate: conservative where
the bias is not 0, and exact where it is (then the inequality is an equality), to the extent that the
Satterthwaite quantile fits the noise of the mean (a coverage audit measured 0.94-0.95 for unbiased REINFORCE
at N = 200-10,000, and 0.99 for biased estimators).
The bootstrap is written as
resampling *weights* (multinomial counts / N), so every statistic of every resample is one matrix
product: B x N by N x P. This is the percentile method of `scipy.stats.bootstrap` (rescaled or moved
as above; the tests check the two agree) at a small fraction of its cost, since scipy would materialise
B x N x P resamples. Rows with any non-finite coordinate are counted in `nonfinite` and left out of every
figure.

What no interval can do: see an event rarer than about 1/N. Where an estimator's large estimates come with
a small probability p (REINFORCE on a Bernoulli whose logit is far from 0) and N p is small, every interval
and the bias flag are only as good as the estimates that happened to be drawn: REINFORCE on
tucker-0.45@theta=-6 (p = 0.0025) at N = 200 drew none of them in 61% of simulated runs, and then showed zero
variance with a significant bias. The sweep's N = 10,000 sees them (coverage 0.95 there).
"""
from __future__ import annotations

import contextlib
import functools
import math

import torch
# scipy.special, not scipy.stats: the same functions (scipy.stats's chi2 and norm call these), without
# the 0.4 s that importing scipy.stats adds to every process that measures (each pool or Ray worker).
from scipy import special

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 1000
# Family-wise level at which `bias_significant` flags a bias: strict, so that an unbiased
# estimator is flagged in about 1 cell in 1000 rather than 1 in 20. That rate holds where the z-scores are
# close to normal: at the sweep's N = 10,000 a coverage audit measured 0.001-0.002 for REINFORCE (0.004 at
# tucker-0.45@theta=-6). With skewed estimates and a small N the sample standard error is smallest exactly
# when the rare large estimates are missing, and the rate grows: 0.003-0.08 at N = 200 (poly-2@logits=-3..3:
# 0.08), 0.6 at tucker-0.45@theta=-6, N = 200 (see "What no interval can do" above).
BIAS_FLAG_LEVEL = 0.999
BOOTSTRAP_METRICS = ("variance_trace", "mse", "snr")


BLOCK = 50  # resamples per block: bounds memory at BLOCK x N weights for large N
CACHE_LIMIT = 2 ** 24  # weights kept in memory (128 MiB) and reused by the cells of a run


def _weight_blocks(n: int, resamples: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, resamples, BLOCK):
        size = min(BLOCK, resamples - start)
        indices = torch.randint(n, (size, n), generator=generator)
        counts = torch.zeros(size, n, dtype=torch.float64)
        counts.scatter_add_(1, indices, torch.ones_like(indices, dtype=torch.float64))
        yield counts / n


@functools.lru_cache(maxsize=2)
def _cached_weights(n: int, resamples: int, seed: int) -> torch.Tensor:
    return torch.cat(list(_weight_blocks(n, resamples, seed)))


def bootstrap_weights(n: int, resamples: int, seed: int):
    """Blocks of float64 resampling weights (multinomial counts of n draws, / n), `resamples` rows in all.

    Small problems reuse one cached matrix across cells; large ones stream blocks of BLOCK rows."""
    if n * resamples <= CACHE_LIMIT:
        return [_cached_weights(n, resamples, seed)]
    return _weight_blocks(n, resamples, seed)


def _statistics(weights: torch.Tensor, centred: torch.Tensor, shift: torch.Tensor,
                true_grad: torch.Tensor, sq_err: torch.Tensor) -> dict[str, torch.Tensor]:
    """All statistics, per coordinate where they have coordinates, for each row of weights (a
    distribution over the N estimates): the point figures, with uniform weights.

    `centred` = estimates - their mean (for numerical stability), `shift` = that mean.
    """
    n, p = centred.shape
    # One product for the three weighted sums: the weights are read once, not three times.
    sums = weights @ torch.cat([centred, centred.square(), sq_err.unsqueeze(-1)], dim=1)
    mean_centred, second, mse = sums[:, :p], sums[:, p:2 * p], sums[:, 2 * p]   # (B, P), (B, P), (B,)
    # ddof = 1; at least 0: identical rows (the exact estimator) whose float64 mean rounds gave -2e-51
    variance = ((second - mean_centred.square()) * (n / (n - 1))).clamp_min(0)   # (B, P)
    mean = mean_centred + shift
    variance_trace = variance.sum(-1)
    bias_norm = (mean - true_grad).norm(dim=-1)
    return {
        "variance_trace": variance_trace,
        "bias_norm": bias_norm,
        "mse": mse,
        "cosine": torch.nn.functional.cosine_similarity(mean, true_grad.expand_as(mean), dim=-1),
        "snr": mean.square().sum(-1) / variance_trace,
        "_variance": variance,
        "_mean": mean,
    }


def _resampled(weights: torch.Tensor, centred: torch.Tensor, shift: torch.Tensor,
               sq_err: torch.Tensor) -> dict[str, torch.Tensor]:
    """BOOTSTRAP_METRICS for each row of weights (a resample). Only their sums over coordinates are
    needed, so the weighted second moments enter as one column of squared norms ||c_i||^2, not P columns:
    sum_p Var_p = (sum_i w_i ||c_i||^2 - ||sum_i w_i c_i||^2) n / (n - 1). One product of P + 2 columns
    instead of 2P + 1 (the sweep's largest problems, P = 128, spent half their metrics there); the sums
    round differently from _statistics' per-coordinate ones, by ~1e-16 relative."""
    n, p = centred.shape
    sums = weights @ torch.cat([centred, centred.square().sum(-1, keepdim=True), sq_err.unsqueeze(-1)], dim=1)
    mean_centred, second, mse = sums[:, :p], sums[:, p], sums[:, p + 1]
    variance_trace = ((second - mean_centred.square().sum(-1)) * (n / (n - 1))).clamp_min(0)
    return {"variance_trace": variance_trace, "mse": mse,
            "snr": (mean_centred + shift).square().sum(-1) / variance_trace}


def bootstrap_interval(name: str, estimate: float, resampled: torch.Tensor, n: int, alpha: float) -> tuple[float, float]:
    """(lo, hi) of BOOTSTRAP_METRICS' `name` from its values over the resamples (module docstring: percentile,
    rescaled or moved). The interval is widened to hold `estimate` where it does not (a skewed or
    biased bootstrap distribution): the point figure is then never outside its own interval, and coverage
    can only grow."""
    if name == "variance_trace":
        resampled = resampled * (n / (n - 1))
    # Resamples without spread give snr = inf, and interpolating between two infinities gave nan, which the
    # bounds below then turned into a falsely tight interval: there, the nearest order statistics instead.
    infinite = bool(torch.isinf(resampled).any())
    low = float(torch.nanquantile(resampled, alpha, interpolation="lower" if infinite else "linear"))
    high = float(torch.nanquantile(resampled, 1 - alpha, interpolation="higher" if infinite else "linear"))
    if not math.isfinite(estimate) or math.isnan(low) or math.isnan(high):  # no spread, or nothing to measure
        return low, high
    if name == "snr":  # the bias of the estimate and the resamples' bias again (module docstring)
        low, high = max(0.0, low - 2 / n), max(0.0, high - 2 / n)
    return min(low, estimate), max(high, estimate)


def mean_error_radius(centred: torch.Tensor, confidence: float) -> float:
    """r with P(||mean - E g|| <= r) ~ confidence: Satterthwaite's scaled chi-square for ||mean - E g||^2."""
    n, p = centred.shape
    # tr(S) and tr(S^2) from whichever Gram matrix is smaller: C'C (P x P) or CC' (N x N).
    gram = centred.T @ centred if p <= n else centred @ centred.T
    mean = float(torch.trace(gram)) / (n - 1) / n
    var = 2 * float(gram.square().sum()) / (n - 1) ** 2 / n ** 2
    if mean <= 0 or var <= 0:
        return 0.0
    scale, dof = var / (2 * mean), 2 * mean ** 2 / var
    return math.sqrt(scale * 2 * special.gammaincinv(dof / 2, confidence))  # the chi-square quantile


def bias_radius(centred: torch.Tensor, confidence: float, reference_se: float = 0.0) -> float:
    """r with P(|bias_norm - true bias norm| <= r) >= confidence, up to the Satterthwaite approximation (with
    equality at zero bias; see the module docstring and gradient_metrics)."""
    if reference_se <= 0:
        return mean_error_radius(centred, confidence)
    half = (1 - confidence) / 2
    return mean_error_radius(centred, 1 - half) + reference_se / math.sqrt(half)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """torch on `threads` threads inside the block (None: as it is). The thread count is part of the numerics:
    torch splits an op over many elements between its threads, and the pieces round differently."""
    before = torch.get_num_threads()
    if threads is None or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def one_thread():
    """torch on one thread inside the block. A float64 reduction over several threads sums in an order that
    depends on the thread count (results differed in the 15th digit between 1 and 2 threads), so the
    figures are computed on one: the same seed then gives the same numbers in this process, on a pool
    worker with fewer threads, or on Ray."""
    return torch_threads(1)


def gradient_metrics(estimates: torch.Tensor, true_grad: torch.Tensor, **options) -> dict[str, float]:
    """`_gradient_metrics` on one thread (see one_thread): the figures do not depend on the executor."""
    with one_thread():
        return _gradient_metrics(estimates, true_grad, **options)


def _gradient_metrics(estimates: torch.Tensor, true_grad: torch.Tensor, *, seed: int = 0,
                     resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE,
                     rounding: float = 0.0, reference_se: float = 0.0, coordinates: bool = True) -> dict[str, float]:
    """Every metric of DESIGN.md section 5, with `<name>_lo` / `<name>_hi` bounds.

    `rounding`: the size of float rounding in the estimates; a zero-variance coordinate (the exact
    estimator) counts as biased only when its error exceeds it.
    `reference_se`: sqrt(E||g_ref - g_true||^2) when `true_grad` is itself an estimate. The bias
    interval then covers both errors: |bias_norm - true bias| <= ||mean - E g|| + ||g_ref - g_true||,
    each term bounded at level 1 - alpha/2 (the first as below, the second by Markov's inequality on
    its square: P(||e||^2 > se^2 / (alpha/2)) <= alpha/2), so the union holds at 1 - alpha.
    `coordinates`: False when the estimates' coordinates have no meaning of their own (an isometric
    embedding, benchmarks.embedding): bias_z_max and variance_max are then NaN. Then, and with an estimated reference,
    bias_significant says whether bias_norm exceeds its radius at level BIAS_FLAG_LEVEL (reference error
    included) rather than comparing per-coordinate z-scores with a Bonferroni bound."""
    estimates = estimates.detach().to("cpu", torch.float64).reshape(estimates.shape[0], -1)
    true_grad = true_grad.detach().to("cpu", torch.float64).reshape(-1)
    finite = torch.isfinite(estimates).all(-1)
    nonfinite = int((~finite).sum())
    estimates = estimates[finite]
    n, p = estimates.shape
    row = {"n_finite": n, "nonfinite": nonfinite, "n_params": p, "true_grad_norm": float(true_grad.norm())}
    if n < 2:
        return row
    shift = estimates.mean(0)
    # A coordinate whose rows are all equal (the exact estimator) has no spread, whatever the rounding of its
    # float mean (which gave `exact` a variance of 8.6e-45 and z = 1.7e8 in float64): centred on that value, it
    # is exactly 0 in every figure and every resample.
    constant = (estimates == estimates[0]).all(0)
    shift = torch.where(constant, estimates[0], shift)
    centred = estimates - shift
    sq_err = (estimates - true_grad).square().sum(-1)
    point = _statistics(torch.full((1, n), 1.0 / n, dtype=torch.float64), centred, shift, true_grad, sq_err)
    blocks = [_resampled(w, centred, shift, sq_err) for w in bootstrap_weights(n, resamples, seed)]
    resampled = {name: torch.cat([b[name] for b in blocks]) for name in BOOTSTRAP_METRICS}
    alpha = (1 - confidence) / 2
    for name in ("bias_norm", "cosine"):
        row[name] = float(point[name][0])
    for name in BOOTSTRAP_METRICS:
        row[name] = float(point[name][0])
        row[f"{name}_lo"], row[f"{name}_hi"] = bootstrap_interval(name, row[name], resampled[name], n, alpha)
    variance = point["_variance"][0]
    bias = point["_mean"][0] - true_grad
    radius = bias_radius(centred, confidence, reference_se)
    row["bias_norm_lo"] = max(0.0, row["bias_norm"] - radius)
    row["bias_norm_hi"] = row["bias_norm"] + radius
    true_norm = row["true_grad_norm"]
    for suffix in ("", "_lo", "_hi"):
        row[f"rel_bias{suffix}"] = row[f"bias_norm{suffix}"] / true_norm if true_norm > 0 else math.nan
    row["variance_mean"] = row["variance_trace"] / p
    row["variance_max"] = float(variance.max())
    row["bias_sq_debiased"] = float(bias.square().sum()) - row["variance_trace"] / n
    standard_error = (variance / n).sqrt()
    # A bias counts only beyond float rounding: z = (|bias| - rounding)+ / se. At a saturated float32 logit the
    # estimates spread by 1e-15 around a bias of 1e-13, far below what float32 resolves in a problem of order 1,
    # and z = |bias| / se flagged unbiased estimators there; a coordinate without any spread (the exact
    # estimator) is biased only beyond the rounding (z = inf). (A first version switched to that rule wherever
    # se < rounding, and then flagged noise at z = inf where se was just below it: a review measured 58 of 200.)
    rounding = max(rounding, 1e-12 * float(true_grad.abs().max()), 1e-300)
    beyond = (bias.abs() - rounding).clamp_min(0)
    z = torch.where(standard_error > 0, beyond / standard_error, torch.where(beyond > 0, math.inf, 0.0))
    if not coordinates or reference_se > 0:
        # Per-coordinate z-scores would treat an estimated reference as exact (its per-coordinate errors
        # are not known), and embedded coordinates mean nothing: the flag tests the norm instead.
        if not coordinates:  # per-coordinate figures of a basis that means nothing
            row["bias_z_max"] = row["variance_max"] = math.nan
        else:
            row["bias_z_max"] = float(z.max())
        row["bias_significant"] = bool(row["bias_norm"] > bias_radius(centred, BIAS_FLAG_LEVEL, reference_se))
        return row
    row["bias_z_max"] = float(z.max())
    # Bonferroni over the P coordinates.
    row["bias_significant"] = bool(row["bias_z_max"] > special.ndtri(1 - (1 - BIAS_FLAG_LEVEL) / (2 * p)))
    return row
