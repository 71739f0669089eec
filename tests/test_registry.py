import pytest
import torch
import torch.distributions as D

import estimators
from estimators.registry import UnknownEstimatorError, UnsupportedFamilyError
from tests.helpers import ALPHA, bonferroni_z


def test_lookup_and_metadata():
    spec = estimators.get_spec("gumbel_softmax")
    assert spec.needs == ("relaxable",) and spec.supports("bernoulli") and spec.supports("categorical")
    assert not spec.supports("categorical_index") and not spec.supports("normal")
    assert spec.unbiased is False and spec.hparams == {"tau": 1.0} and spec.takes_tau
    assert spec.f_evals == 1 and spec.summary and spec.reference
    assert estimators.get_spec("reinforce_loo").min_samples == 2
    names = [s.name for s in estimators.list_estimators()]
    assert names == sorted(names) and {"reinforce", "pathwise", "exact"} <= set(names)


def test_unknown_name_suggests_and_lists():
    with pytest.raises(UnknownEstimatorError) as info:
        estimators.get("reinfroce")
    message = str(info.value)
    assert "Did you mean 'reinforce'" in message and "Known:" in message and "pathwise" in message


def test_glob_patterns_and_unmatched_pattern():
    assert {s.name for s in estimators.list_estimators(["reinforce_*"])} == {
        "reinforce_loo", "reinforce_ema", "reinforce_nvil", "reinforce_grpo", "reinforce_drgrpo"}
    with pytest.raises(UnknownEstimatorError, match="gumbel"):
        estimators.list_estimators(["gumbell*"])


def test_registering_twice_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        estimators.register("reinforce", families=("bernoulli",), unbiased=True, summary="", reference="")(lambda f, d, num_samples=1: None)


def test_register_then_use_then_unregister():
    @estimators.register("test_plain_pathwise", families=("normal",), unbiased=True, summary="s", reference="r")
    def plain(f, dist, num_samples=1):
        return f(dist.rsample((num_samples,)))

    try:
        mu = torch.zeros(3, requires_grad=True)
        out = estimators.get("test_plain_pathwise")(lambda x: x ** 2, D.Normal(mu, 1.0), num_samples=4)
        assert out.shape == (4, 3)
    finally:
        estimators.unregister("test_plain_pathwise")
    assert "test_plain_pathwise" not in estimators.REGISTRY


def test_unsupported_family_names_estimators_that_support_it():
    bits = D.Bernoulli(logits=torch.zeros(3, requires_grad=True))
    with pytest.raises(UnsupportedFamilyError) as info:
        estimators.get("pathwise")(lambda z: z, bits)
    message = str(info.value)
    assert "'bernoulli'" in message and "reinforce" in message and "gumbel_softmax" in message


def test_relaxed_estimators_refuse_index_categorical_with_a_hint():
    dist = D.Categorical(logits=torch.zeros(4, requires_grad=True))
    with pytest.raises(UnsupportedFamilyError, match="categorical_index"):
        estimators.get("gumbel_softmax")(lambda z: z, dist)
    # the score function works on integer samples
    out = estimators.get("reinforce")(lambda z: z.double(), dist, num_samples=3)
    assert out.shape == (3,)


def test_bad_arguments():
    bits = D.Bernoulli(logits=torch.zeros(2, requires_grad=True))
    for tau in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tau"):
            estimators.get("gumbel_softmax")(lambda z: z, bits, num_samples=2, tau=tau)
    with pytest.raises(estimators.NotApplicableError, match="num_samples >= 2"):
        estimators.get("reinforce_loo")(lambda z: z, bits, num_samples=1)
    with pytest.raises(estimators.NotApplicableError, match="num_samples >= 1"):
        estimators.get("reinforce")(lambda z: z, bits, num_samples=0)


def test_exact_refuses_large_supports():
    bits = D.Independent(D.Bernoulli(logits=torch.zeros(20, requires_grad=True)), 1)
    with pytest.raises(estimators.NotApplicableError, match="2\\^20 configurations"):
        estimators.get("exact")(lambda z: z.sum(-1), bits)


def test_moving_average_baseline_state_is_resettable_and_lags_one_call():
    est = estimators.get("reinforce_ema")
    bits = D.Bernoulli(logits=torch.zeros(5, requires_grad=True))
    est(lambda z: z * 0 + 2.0, bits, num_samples=3)
    torch.testing.assert_close(est.baseline.value, torch.full((5,), 2.0))
    est.reset()
    assert est.baseline.value is None


def test_moving_average_baseline_excludes_the_current_costs():
    """Folding the current costs in before subtracting would correlate b with f(z) and bias the gradient."""
    from estimators.reinforce import MovingAverageBaseline

    baseline = MovingAverageBaseline(decay=0.5)
    assert baseline(torch.tensor([4.0, 6.0])) == 0.0          # S = 2 samples of one batch element
    assert float(baseline(torch.tensor([100.0]))) == pytest.approx(5.0)
    # bias-corrected: (0.5 * 0.5 * 5 + 0.5 * 100) / (1 - 0.25)
    assert float(baseline(torch.tensor([0.0]))) == pytest.approx((0.25 * 5.0 + 0.5 * 100.0) / 0.75)
    per_element = MovingAverageBaseline(decay=0.5)
    per_element(torch.tensor([[1.0, 10.0], [3.0, 30.0]]))     # (S, batch): one average per element
    torch.testing.assert_close(per_element.value, torch.tensor([2.0, 20.0]))
    with pytest.raises(ValueError, match="decay"):
        MovingAverageBaseline(decay=1.0)


@pytest.mark.parametrize("classes", [2, 7, 8, 10, 15, 16, 20])  # both sides of the switch to torch.softmax at 16
def test_written_out_softmax_matches_torch_softmax(classes):
    from estimators.relaxed import softmax_last

    x = torch.randn(50, 3, classes, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(50, 3, classes, dtype=torch.float64)
    torch.testing.assert_close(softmax_last(x), torch.softmax(x, -1))
    ours = torch.autograd.grad((softmax_last(x) * weights).sum(), x)[0]
    theirs = torch.autograd.grad((torch.softmax(x, -1) * weights).sum(), x)[0]
    torch.testing.assert_close(ours, theirs)


@pytest.mark.statistical(checks=1)
def test_fast_bernoulli_sampling_matches_torch_distributions():
    from estimators import sampling

    logits = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    for dist in (D.Bernoulli(logits=logits), D.Independent(D.Bernoulli(logits=logits), 1),
                 D.Independent(D.Bernoulli(logits=logits), 2)):
        z = sampling.sample(dist, 4000)
        assert z.shape == (4000, *dist.batch_shape, *dist.event_shape) and not z.requires_grad
        torch.testing.assert_close(sampling.log_prob(dist, z), dist.log_prob(z))
        ours = torch.autograd.grad(sampling.log_prob(dist, z).sum(), logits)[0]
        torch.testing.assert_close(ours, torch.autograd.grad(dist.log_prob(z).sum(), logits)[0])
    # The last draw's mean matches the probabilities: one level-ALPHA check, Bonferroni over the 15 coordinates.
    probs = torch.sigmoid(logits.detach())
    se = (probs * (1 - probs) / 4000).sqrt()
    assert ((z.mean(0).reshape(3, 5) - probs).abs() < bonferroni_z(ALPHA, probs.numel()) * se).all()


@pytest.mark.statistical(checks=4)
def test_fast_normal_and_categorical_sampling_match_torch_distributions():
    from estimators import sampling

    loc = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    scale = torch.rand(3, 4, dtype=torch.float64).add(0.5).requires_grad_()
    logits = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    cases = [(D.Normal(loc, scale), (loc, scale)), (D.Independent(D.Normal(loc, scale), 1), (loc, scale)),
             (D.OneHotCategorical(logits=logits), (logits,)),
             (D.Independent(D.OneHotCategorical(logits=logits), 1), (logits,))]
    for dist, params in cases:
        z = sampling.sample(dist, 20000)
        assert z.shape == (20000, *dist.batch_shape, *dist.event_shape) and not z.requires_grad
        torch.testing.assert_close(sampling.log_prob(dist, z), dist.log_prob(z))
        for ours, theirs in zip(torch.autograd.grad(sampling.log_prob(dist, z).sum(), params, retain_graph=True),
                                torch.autograd.grad(dist.log_prob(z).sum(), params)):
            torch.testing.assert_close(ours, theirs)
        # The mean matches: one level-ALPHA check per case, Bonferroni over its coordinates.
        se = dist.stddev.detach() / 20000 ** 0.5
        critical = bonferroni_z(ALPHA, se.numel())
        assert ((z.mean(0) - dist.mean.detach()).abs() < critical * se + 1e-12).all(), type(dist)


def test_f_evals_count_per_estimate():
    assert estimators.get_spec("reinforce").f_evals_per_estimate(8) == 8
    assert estimators.get_spec("disarm").f_evals_per_estimate(8) == 16
    assert estimators.get_spec("muprop").f_evals_per_estimate(8) == 9          # f(mu) once per call
    assert estimators.get_spec("measure_valued").f_evals_per_estimate(2, coordinates=3) == 2 * (1 + 3 * 3)


def test_inverse_cdf_categorical_at_the_ends_of_the_uniform(monkeypatch):
    """u = 0 draws the first positive-probability class and u just under 1 the last one, even when
    zero-probability classes lead or trail (in float32, where the cumulative sum rounds)."""
    from estimators import sampling

    logits = torch.tensor([[float("-inf"), 0.3, float("-inf"), -1.0, 2.0, float("-inf")]])
    probs = torch.softmax(logits, -1)
    for u, expected in ((0.0, 1), (1.0 - 2.0 ** -24, 4)):
        monkeypatch.setattr(sampling.torch, "rand", lambda shape, **kwargs: torch.full(shape, u, **kwargs))
        z = sampling._one_hot_by_inverse_cdf(probs, 3)
        assert (z.argmax(-1) == expected).all() and (z.sum(-1) == 1).all(), (u, z)


def test_cumulative_probabilities_repeat_exactly_at_zero_probability_classes():
    """The running-max form used where the scan may be parallel (CUDA) gives c_k = c_(k-1) bit for bit
    at p_k = 0, also for runs of zeros, and the plain cumulative sum elsewhere."""
    from estimators.sampling import _cumulative

    probs = torch.softmax(torch.randn(200, 9), -1)
    probs[:, [0, 3, 4, 8]] = 0.0
    masked = _cumulative(probs, sequential_scan=False)
    zero = probs == 0
    previous = torch.nn.functional.pad(masked[:, :-1], (1, 0))
    assert (masked[zero] == previous[zero]).all()
    assert torch.equal(masked[~zero], probs.cumsum(-1)[~zero])


@pytest.mark.statistical(checks=1)
def test_inverse_cdf_categorical_never_draws_a_zero_probability_class():
    """Classes with probability 0 first, in the middle and last are never drawn, in float32 (where
    the cumulative sum rounds), and the drawn frequencies match the probabilities (one level-ALPHA check,
    Bonferroni over the 3 classes drawn)."""
    from estimators import sampling

    logits = torch.tensor([[float("-inf"), 0.3, float("-inf"), -1.0, 2.0, float("-inf")]])
    dist = D.OneHotCategorical(logits=logits)
    z = sampling.sample(dist, 200_000)
    assert (z.sum(-1) == 1).all()
    probs = dist.probs[0].double()
    frequency = z.double().mean(0)[0]
    assert (frequency[probs == 0] == 0).all()
    drawn = probs > 0
    se = (probs[drawn] * (1 - probs[drawn]) / 200_000).sqrt()
    assert ((frequency[drawn] - probs[drawn]).abs() <= bonferroni_z(ALPHA, int(drawn.sum())) * se).all()


def test_masked_categories_give_finite_log_probabilities():
    from estimators import sampling

    logits = torch.tensor([[0.0, float("-inf"), 1.0]], requires_grad=True)
    dist = D.OneHotCategorical(logits=logits)
    z = sampling.sample(dist, 100)
    assert torch.isfinite(sampling.log_prob(dist, z)).all()
    torch.testing.assert_close(sampling.log_prob(dist, z), dist.log_prob(z))


def test_conditional_logistic_noise_is_accurate_at_extreme_logits(monkeypatch):
    """z~ given b has the sign of b and matches phi + logit(u') evaluated in float64 at the same v."""
    from estimators import conditional

    generator = torch.Generator().manual_seed(0)
    # The float32 uniforms the estimator sees, held in float64 for the reference: comparing against
    # the unrounded float64 v would charge the input's rounding (relative 3e-8 / (1 - v) in 1 - v,
    # up to 3% at v = 1 - 1e-6) to the function.
    v = torch.rand(20_000, dtype=torch.float64, generator=generator).clamp(1e-6, 1 - 1e-6).float().double()
    monkeypatch.setattr(conditional, "_uniform_like", lambda shape, like: v.to(like.dtype).expand(shape))
    for phi in (-20.0, -12.0, -3.0, 0.0, 3.0, 12.0, 20.0):
        theta = torch.sigmoid(torch.tensor(phi, dtype=torch.float64))
        one_minus_theta = torch.sigmoid(torch.tensor(-phi, dtype=torch.float64))
        for b in (0.0, 1.0):
            z32 = conditional.conditional_logistic(torch.full((20_000,), phi), torch.full((20_000,), b))
            # u' = 1 - theta + v theta (b = 1) or v (1 - theta) (b = 0), with log u' and log(1 - u') taken
            # without forming 1 - u' by subtraction: at phi = -20 and v near 1 that cancels even in float64.
            if b:
                log_u = torch.log(one_minus_theta + v * theta)
                log_one_minus_u = torch.log(theta) + torch.log1p(-v)
            else:
                log_u = torch.log(v) + torch.log(one_minus_theta)
                log_one_minus_u = torch.log(theta + (1 - v) * one_minus_theta)
            reference = phi + log_u - log_one_minus_u
            assert ((z32 > 0) == bool(b)).all(), (phi, b)
            torch.testing.assert_close(z32.double(), reference, rtol=1e-5, atol=1e-5)


def test_hyperparameters_are_checked_at_the_boundary_with_one_message():
    bits = D.Bernoulli(logits=torch.zeros(2, requires_grad=True))
    cases = [("gumbel_rao", {"k": 0}, "k >= 1, an integer"), ("gumbel_rao", {"k": 2.5}, "k >= 1, an integer"),
             ("reinmax", {"tau": 0.5}, "tau >= 1"), ("reinforce_ema", {"decay": 1.0}, "decay in [0, 1)"),
             ("rebar", {"coupling": "loose"}, "coupling one of 'tied', 'independent'"),
             ("gumbel_softmax", {"tau": float("inf")}, "tau > 0")]
    for name, hparams, constraint in cases:
        ((key, value),) = hparams.items()
        with pytest.raises(estimators.HyperparameterError) as info:
            estimators.get(name, **hparams)
        message = str(info.value)
        assert f"'{name}'" in message and f"{key}={value!r}" in message and constraint in message, message
    # the same check on a call of a stateless estimator, and an unknown name lists what it takes
    with pytest.raises(estimators.HyperparameterError, match="tau > 0"):
        estimators.get("gumbel_softmax")(lambda z: z, bits, num_samples=2, tau=-1.0)
    with pytest.raises(estimators.HyperparameterError, match="has no hyperparameter 'temperature'; it takes tau"):
        estimators.get("gumbel_softmax", temperature=0.5)
    # a stateful estimator takes them when built, and says how when given them per call
    with pytest.raises(estimators.HyperparameterError, match=r"make\(decay=0.5\)"):
        estimators.get("reinforce_ema")(lambda z: z, bits, num_samples=2, decay=0.5)
    assert estimators.get("reinforce_ema", decay=0.5).hparams == {"decay": 0.5}
    assert estimators.get("gumbel_rao", k=3.0).keywords["k"] == 3 and isinstance(estimators.get("gumbel_rao", k=3.0).keywords["k"], int)


def test_a_declaration_that_contradicts_itself_is_refused_at_registration():
    with pytest.raises(ValueError, match="breaks its own constraint"):
        estimators.HParam(0.0, estimators.greater_than(0.0))
    with pytest.raises(ValueError, match="unknown capabilities"):
        estimators.register("test_bad_needs", needs=("grad",), unbiased=True, summary="", reference="")
    with pytest.raises(ValueError, match="families it supports or the capabilities it needs"):
        estimators.register("test_no_scope", unbiased=True, summary="", reference="")


def test_capabilities_come_from_torch():
    """pathwise serves every class with has_rsample, the score function every class with log_prob on a
    support that does not move with the parameters (Uniform's does: REINFORCE would be biased there)."""
    low = torch.zeros(3, requires_grad=True)
    uniform = D.Uniform(low, low.detach() + 2.0)
    assert estimators.get("pathwise")(lambda x: x ** 2, uniform, num_samples=4).shape == (4, 3)
    with pytest.raises(UnsupportedFamilyError, match="support that does not move with the parameters"):
        estimators.get("reinforce")(lambda x: x ** 2, uniform, num_samples=4)
    rate = torch.full((3,), 2.0, requires_grad=True)
    assert estimators.get("reinforce_loo")(lambda x: x, D.Poisson(rate), num_samples=4).shape == (4, 3)
    with pytest.raises(UnsupportedFamilyError, match="has_rsample"):
        estimators.get("pathwise")(lambda x: x, D.Poisson(rate), num_samples=4)
    assert estimators.get_spec("pathwise").applies_to == "any with rsample"


def test_exact_costs_one_evaluation_per_state_it_enumerates():
    from benchmarks import measure

    assert measure("exact", "quadratic-4", n_estimates=4, timing=False)["f_evals"] == 4
    assert measure("exact", "tucker-0.45", n_estimates=4, n_samples=3, timing=False)["f_evals"] == 2
    assert measure("reinforce", "quadratic-4", n_estimates=4, n_samples=3, timing=False)["f_evals"] == 3
