"""Sequence policies (benchmarks/tasks/autoregressive.py, benchmarks/tasks/sequences.py) and the group baselines on them.

The exact gradient by enumeration is checked by independent routes (torch.nn.GRUCell's log-probabilities,
autograd through the teacher-forced expectation over all V^L sequences, the KL-regularised objective, a
many-sample REINFORCE estimate with its standard error); RLOO is z-tested on every registered sequence
problem; Dr. GRPO's and GRPO's means against their closed forms ((S - 1)/S and c_S(p) times the exact
gradient, estimators/group_baselines.py). Every statistical check runs at level ALPHA = 1e-6 with a fixed
seed (tests/helpers.py); this file makes 2 + 2 + 8 + 3 + 5 + 2 + 1 = 23 of them (each test states its count).
"""
import math

import pandas as pd
import pytest
import torch

import estimators
from benchmarks.harness import draw_estimates, surrogate_and_gradients
from benchmarks.tasks import InvalidPointError, get_problem, list_problems
import benchmarks.tasks.autoregressive as autoregressive
import benchmarks.tasks.sequences as sequences
from benchmarks.tasks.autoregressive import (AutoregressiveSequence, all_sequences, enumerate_log_probs,
                                             policy_weights)
from estimators.group_baselines import binary_reward_scale
from tests.helpers import ALPHA, Z, bonferroni_z, draw, max_abs_z

REGISTERED = [p.id for p in list_problems(["seq-*"])]


def test_registered_problems_are_outside_the_default_sweep():
    assert REGISTERED == ["seq-sparse", "seq-sparse@steps=10", "seq-count", "seq-count@steps=10", "seq-modsum",
                          "seq-modsum@steps=10", "seq-kl"]
    assert not any(p.id.startswith("seq-") for p in list_problems())
    assert get_problem("seq-sparse@steps=0") is get_problem("seq-sparse")
    assert get_problem("seq-kl@steps=10") is get_problem("seq-kl")
    assert [p.id for p in list_problems(["seq-sparse*"])] == ["seq-sparse", "seq-sparse@steps=10"]
    problem = get_problem("seq-count@vocab=3,length=5,steps=2")
    assert problem.id == "seq-count@vocab=3,length=5,steps=2" and problem.eval_point == "vocab=3,length=5,steps=2"
    assert problem.distribution_type is AutoregressiveSequence and problem.family == "autoregressive"
    assert get_problem("seq-sparse").settings["target"] == [1, 2, 2, 2, 2, 2, 2]  # the initial greedy sequence


def test_a_part_way_point_is_trained_when_first_used_not_when_registered():
    before = sequences.trained_weights.cache_info().misses
    problem = sequences.sequence_problem("modsum", steps=3, length=3)
    assert sequences.trained_weights.cache_info().misses == before
    assert problem.n_params == 1780
    assert sequences.trained_weights.cache_info().misses == before + 1
    initial = sequences.sequence_problem("modsum", steps=0, length=3).point()
    assert any(not torch.equal(initial[k], v) for k, v in problem.point().items())
    record = problem.record()
    assert record["steps"] == 3 and record["point"]["steps"] == 3 and len(str(record)) < 600


# --- the distribution --------------------------------------------------------------------------------------

def gru_cell_log_prob(weights, tokens):
    """log p of one sequence (L, V) by torch.nn.GRUCell and torch.log_softmax: an independent route."""
    hidden = weights["w_hh"].shape[-1]
    cell = torch.nn.GRUCell(weights["w_ih"].shape[-1], hidden).to(weights["w_ih"].dtype)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(weights[name.replace("weight", "w").replace("bias", "b")])
    h, x, total = torch.zeros(1, hidden, dtype=tokens.dtype), weights["bos"][None], 0.0
    for token in tokens:
        h = cell(x, h)
        total = total + (token * torch.log_softmax(h @ weights["w_out"].T + weights["b_out"], -1)[0]).sum()
        x = (token @ weights["embedding"])[None]
    return total


def test_log_prob_matches_torch_gru_cell_for_batched_weights():
    rows = [policy_weights(4, 16, seed=s, logit_scale=4.0) for s in range(6)]
    batched = {name: torch.stack([w[name] for w in rows]).reshape(2, 3, *rows[0][name].shape) for name in rows[0]}
    dist = AutoregressiveSequence(batched, 5, validate_args=True)
    assert dist.batch_shape == (2, 3) and dist.event_shape == (5, 4)
    samples = dist.sample((4,))
    assert samples.shape == (4, 2, 3, 5, 4) and ((samples == 0) | (samples == 1)).all() and (samples.sum(-1) == 1).all()
    log_probs = dist.log_prob(samples)
    expected = torch.stack([torch.stack([gru_cell_log_prob(rows[b], samples[s].reshape(6, 5, 4)[b]) for b in range(6)])
                            for s in range(4)]).reshape(4, 2, 3)
    torch.testing.assert_close(log_probs, expected.detach(), rtol=1e-12, atol=1e-12)


def test_enumeration_matches_teacher_forcing_and_sums_to_one():
    for problem_id in ("seq-kl", "seq-count"):
        weights = get_problem(problem_id).point()
        enumerated = enumerate_log_probs(weights, 7)
        teacher_forced = AutoregressiveSequence(weights, 7).log_prob(all_sequences(4, 7))
        torch.testing.assert_close(enumerated, teacher_forced, rtol=1e-12, atol=1e-12)
        assert float(enumerated.exp().sum()) == pytest.approx(1.0, abs=1e-12)


def test_samples_are_sequences_the_log_prob_accepts_and_relaxed_tokens_are_on_the_simplex():
    problem = get_problem("seq-modsum@steps=10")
    dist = problem.distribution(problem.batched_point(3), validate_args=True)
    with pytest.raises(ValueError, match="support"):
        dist.log_prob(torch.full((2, 3, 7, 4), 0.25, dtype=torch.float32))  # validation on: one-hot only
    for kind in ("concrete", "st_concrete", "straight_through"):
        tokens = dist.relaxed_sample(5, kind, tau=0.5)
        assert tokens.shape == (5, 3, 7, 4) and tokens.requires_grad
        torch.testing.assert_close(tokens.detach().sum(-1), torch.ones(5, 3, 7))
        if kind != "concrete":  # the forward pass is an exact sample: one-hot tokens
            assert ((tokens == 0) | (tokens == 1)).all()
        grads = torch.autograd.grad(problem.cost(tokens).sum(), list(dist.weights.values()), allow_unused=True)
        assert all(g is not None and g.abs().sum() > 0 for g in grads), kind
    with pytest.raises(ValueError, match="kind must be one of concrete, st_concrete, straight_through, got 'gumbel'"):
        dist.relaxed_sample(2, "gumbel")


def test_log_prob_takes_a_one_hot_of_another_float_dtype():
    """Found by a new user: a float32 one-hot against the float64 policy raised 'Input dtypes must be the same'
    (torch's own distributions promote); the same sequences in float32 and float64 give the same log-probability."""
    problem = get_problem("seq-sparse")
    dist = problem.distribution(problem.batched_point(2))
    tokens = dist.sample((3,))
    exact = dist.log_prob(tokens.double())
    torch.testing.assert_close(dist.log_prob(tokens.float()), exact, rtol=0, atol=0)


def test_the_relaxed_estimators_apply_and_the_rest_say_they_do_not():
    kind = AutoregressiveSequence
    able = {spec.name for spec in estimators.list_estimators() if spec.supports(kind)}
    assert able == {"reinforce", "reinforce_loo", "reinforce_ema", "reinforce_nvil", "reinforce_grpo",
                    "reinforce_drgrpo", "gumbel_softmax", "st_gumbel_softmax", "straight_through"}
    problem = get_problem("seq-count")
    for name in ("arm", "disarm", "rebar", "relax", "gumbel_rao", "reinmax", "muprop", "exact", "pathwise"):
        with pytest.raises(estimators.UnsupportedFamilyError, match="'autoregressive'"):
            from benchmarks import measure
            measure(name, problem, n_estimates=2, n_samples=2, timing=False)


@pytest.mark.statistical(checks=1)  # per case
@pytest.mark.parametrize("problem_id", ["seq-sparse@length=3", "seq-sparse@length=3,steps=10"])
def test_samples_follow_the_enumerated_probabilities(problem_id):
    """A chi-square goodness-of-fit test of 50,000 draws against the 64 enumerated probabilities (sequences
    with an expected count under 20 pooled), at level ALPHA; at the initial and a trained point."""
    from scipy import stats

    problem = get_problem(problem_id)
    weights = problem.point()
    torch.manual_seed(31)
    samples = AutoregressiveSequence(weights, 3).sample((50_000,))
    codes = (samples.argmax(-1) * torch.tensor([16, 4, 1])).sum(-1)
    observed = torch.bincount(codes, minlength=64).double()
    expected = enumerate_log_probs(weights, 3).exp() * len(codes)
    rare = expected < 20
    observed = torch.cat([observed[~rare], observed[rare].sum(0, keepdim=True)])
    expected = torch.cat([expected[~rare], expected[rare].sum(0, keepdim=True)])
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(chi2, len(observed) - 1) > ALPHA


# --- the exact gradient --------------------------------------------------------------------------------------

@pytest.mark.parametrize("problem_id", ["seq-sparse", "seq-count@steps=10", "seq-modsum@steps=10", "seq-kl"])
def test_exact_gradient_is_autograd_of_the_enumerated_expectation(problem_id):
    """The reference (prefix-tree enumeration) against autograd of sum_z p(z) f(z) over all 4^7 sequences with
    the distribution's own teacher-forced log_prob and the problem's cost (the KL cost through log_prob too)."""
    problem = get_problem(problem_id)
    params = {name: value.unsqueeze(0).requires_grad_() for name, value in problem.point().items()}
    dist = problem.distribution(params, validate_args=True)
    everything = all_sequences(4, 7).unsqueeze(1)                           # (V^L, 1, L, V): batch of one
    expectation = (dist.log_prob(everything).exp() * problem.cost(everything)).sum()
    grads = torch.autograd.grad(expectation, list(params.values()))
    reference = problem.reference()
    torch.testing.assert_close(torch.cat([g.reshape(-1) for g in grads]), reference.gradient, rtol=1e-9, atol=1e-12)
    assert float(expectation.detach()) == pytest.approx(reference.value, rel=1e-12)
    assert reference.standard_error == 0 and reference.method == "enumeration of 4^7 = 16384 sequences"


def test_kl_problem_gradient_is_that_of_the_regularised_objective():
    """grad E_theta[f_theta0] at theta0 equals grad (-E r + beta KL(p_theta || p_init)) with theta everywhere."""
    problem = get_problem("seq-kl")
    weights = {name: value.clone().requires_grad_() for name, value in problem.point().items()}
    log_probs = enumerate_log_probs(weights, 7)
    reference_log_probs = enumerate_log_probs(policy_weights(4, 16, 0, 4.0), 7)
    reward = sequences.sparse_reward(all_sequences(4, 7), (1, 2, 2, 2, 2, 2, 2))
    probs = log_probs.exp()
    objective = -(probs * reward).sum() + 0.2 * (probs * (log_probs - reference_log_probs)).sum()
    grads = torch.autograd.grad(objective, list(weights.values()))
    torch.testing.assert_close(torch.cat([g.reshape(-1) for g in grads]), problem.exact_gradient(), rtol=1e-9, atol=1e-12)
    assert float(objective.detach()) == pytest.approx(problem.exact_value(), rel=1e-12)


def test_rewards_on_one_hot_tokens_and_their_extensions_to_the_simplex():
    tokens = all_sequences(3, 4)
    index = tokens.argmax(-1)
    assert torch.equal(sequences.modsum_reward(tokens), (index.sum(-1) % 3 == 0).double())
    assert torch.equal(sequences.count_reward(tokens), (index == 0).sum(-1).double())
    assert torch.equal(sequences.sparse_reward(tokens, (2, 0, 1, 1)), (index == torch.tensor([2, 0, 1, 1])).all(-1).double())
    # on the simplex: the expectation under independent tokens y_t, e.g. uniform tokens sum to 0 mod V w.p. 1/V
    uniform = torch.full((4, 3), 1 / 3, dtype=torch.float64)
    assert float(sequences.modsum_reward(uniform)) == pytest.approx(1 / 3)
    assert float(sequences.sparse_reward(uniform, (2, 0, 1, 1))) == pytest.approx(3 ** -4)


@pytest.mark.statistical(checks=1)  # per case
@pytest.mark.parametrize("problem_id", ["seq-count@steps=10", "seq-kl"])
def test_exact_gradient_agrees_with_many_sample_reinforce(problem_id):
    """The mean of 4,000 plain REINFORCE estimates (S = 4) is within Z standard errors of the enumerated
    gradient in every coordinate (Bonferroni over the 1780, level ALPHA)."""
    problem = get_problem(problem_id)
    estimates = draw("reinforce", problem_id, 4000, 4, seed=41, dtype=torch.float32)
    assert max_abs_z(estimates, problem.exact_gradient()) < bonferroni_z(ALPHA, problem.n_params)


# --- the estimators on the sequence problems ------------------------------------------------------------------

# (estimator, problem, N): the moving-average baseline warms up first (20 calls of N rows). NVIL's forward
# values are z-tested on every problem by tests/test_conformance.py; its 100 warm-up calls are left out here.
UNBIASED_CASES = [("reinforce_loo", pid, 2000) for pid in REGISTERED] + [("reinforce_ema", "seq-modsum@steps=10", 300)]


@pytest.mark.statistical(checks=1)
@pytest.mark.parametrize("name,problem_id,n", UNBIASED_CASES)
def test_rloo_and_the_other_unbiased_estimators_are_unbiased_on_every_sequence_problem(name, problem_id, n):
    """RLOO on every registered problem, the moving-average baseline on one: z-test per coordinate
    against the exact gradient, Bonferroni over the 1780 coordinates, level ALPHA per case (8 cases)."""
    problem = get_problem(problem_id)
    estimates = draw(name, problem_id, n, 4, seed=43, dtype=torch.float32)
    assert max_abs_z(estimates, problem.exact_gradient()) < bonferroni_z(ALPHA, problem.n_params)


@pytest.mark.statistical(checks=3)
def test_drgrpo_mean_is_s_minus_one_over_s_times_the_exact_gradient():
    """Checks 1-2: at S = 2 (the sparse reward's initial point) and S = 4 (the non-additive reward part-way)
    the mean is (S - 1)/S g*; check 3: at S = 2 it is significantly far from g* (level ALPHA each)."""
    sparse, modsum = get_problem("seq-sparse"), get_problem("seq-modsum@steps=10")
    at_two = draw("reinforce_drgrpo", sparse.id, 4000, 2, seed=44, dtype=torch.float32)
    assert max_abs_z(at_two, sparse.exact_gradient() / 2) < bonferroni_z(ALPHA, sparse.n_params)
    at_four = draw("reinforce_drgrpo", modsum.id, 3000, 4, seed=45, dtype=torch.float32)
    assert max_abs_z(at_four, modsum.exact_gradient() * 3 / 4) < bonferroni_z(ALPHA, modsum.n_params)
    assert max_abs_z(at_two, sparse.exact_gradient()) > bonferroni_z(ALPHA, sparse.n_params)


def success_probability(problem) -> float:
    target = torch.tensor(problem.settings["target"])
    log_probs = enumerate_log_probs(problem.point(), problem.settings["length"])
    return float(log_probs.exp()[int((target * problem.settings["vocab"] ** torch.arange(len(target) - 1, -1, -1)).sum())])


@pytest.mark.statistical(checks=5)
def test_grpo_is_biased_by_its_closed_form_on_the_sparse_reward():
    """With a binary reward E[g_GRPO] = c_S(p) g* (estimators/group_baselines.py). At the sparse reward's
    initial point (p = 0.04) c_2 = 0.71 and c_4 = 1.48, part-way (p = 0.55) c_8 = 1.74. Checks 1-3: the mean
    matches c_S(p) g*; checks 4-5: at S = 2 and 4 it is significantly far from g*, as the theory says it must be
    (sparse reward, small S). Level ALPHA each."""
    for problem_id, n_samples, n, check_bias in (("seq-sparse", 2, 6000, True), ("seq-sparse", 4, 3000, True),
                                                 ("seq-sparse@steps=10", 8, 1500, False)):
        problem = get_problem(problem_id)
        scale = binary_reward_scale(n_samples, success_probability(problem))
        estimates = draw("reinforce_grpo", problem_id, n, n_samples, seed=46 + n_samples, dtype=torch.float32)
        exact = problem.exact_gradient()
        assert max_abs_z(estimates, scale * exact) < bonferroni_z(ALPHA, problem.n_params), (problem_id, n_samples)
        if check_bias:
            assert abs(scale - 1) > 0.25
            assert max_abs_z(estimates, exact) > bonferroni_z(ALPHA, problem.n_params), (problem_id, n_samples)


@pytest.mark.statistical(checks=1)  # per case
@pytest.mark.parametrize("name", ["st_gumbel_softmax", "straight_through"])
def test_straight_through_forward_passes_are_exact_samples(name):
    """A straight-through estimator feeds the hard token forward, so its surrogate's forward value is f at an
    exact sample: the mean of 3,000 x 2 values is E[f] (z-test, level ALPHA)."""
    problem = get_problem("seq-modsum@steps=10")
    torch.manual_seed(47)
    surrogate, _ = surrogate_and_gradients(estimators.get(name), problem, 3000, 2, "cpu", torch.float64,
                                           validate_args=True)
    values = surrogate.detach().mean(0)
    assert abs(float(values.mean()) - problem.exact_value()) < Z * float(values.std()) / len(values) ** 0.5


def test_drawing_is_vectorised_over_estimates_and_sequences(monkeypatch):
    """One batched GRU step per token per pass, whatever N: no Python loop over estimates or sequences."""
    calls = []
    step = autoregressive._Network.step
    monkeypatch.setattr(autoregressive._Network, "step", lambda self, *a: calls.append(1) or step(self, *a))
    problem = get_problem("seq-sparse")
    counts = []
    for n in (3, 300):
        calls.clear()
        draw_estimates(estimators.get("reinforce_loo"), problem, n, 8)
        counts.append(len(calls))
    assert counts[0] == counts[1] == 2 * 7  # the draw (7 steps) and the teacher-forced log_prob (7)


# --- beyond the enumeration limit, and bad input ----------------------------------------------------------------

@pytest.mark.statistical(checks=1)
def test_a_long_sequence_gets_an_estimated_reference_that_names_the_limit(monkeypatch):
    """4^8 sequences exceed 2^14: the reference is the mean of many RLOO estimates with its standard error, and
    says so. It is within se / sqrt(ALPHA) of the enumeration we can still afford here (Markov's inequality on
    ||error||^2, whose mean is se^2: level ALPHA)."""
    monkeypatch.setattr(sequences, "REFERENCE_ESTIMATES", 500)
    problem = sequences.sequence_problem("count", length=8)
    reference = problem.reference()
    assert "exceed the enumeration limit of 2^14 = 16384" in reference.method and "4^8 = 65536" in reference.method
    assert reference.method.startswith("reinforce_loo, mean of 500 estimates x 10 samples")
    assert reference.standard_error > 0 and math.isnan(problem.exact_value())
    weights = {name: value.clone().requires_grad_() for name, value in problem.point().items()}
    exact = torch.autograd.grad(sequences.enumerated_objective(problem.setting, weights, *sequences._enumeration_inputs(
        problem.setting)), list(weights.values()))
    error = float((torch.cat([g.reshape(-1) for g in exact]) - reference.gradient).norm())
    assert error < reference.standard_error / math.sqrt(ALPHA)
    with pytest.raises(InvalidPointError, match=r"steps=10 needs the exact gradient by enumeration, but 4\^8 = 65536 "
                                                r"sequences exceed the enumeration limit of 2\^14 = 16384"):
        get_problem("seq-count@length=8,steps=10")


@pytest.mark.parametrize("problem_id,message", [
    ("seq-sparse@vocab=0", r"vocab must be an integer >= 2 \(one token has one sequence and no gradient\), got 0"),
    ("seq-count@vocab=-3", r"vocab must be an integer >= 2 .*got -3"),
    ("seq-count@vocab=1", r"vocab must be an integer >= 2 .*got 1$"),  # not "got 1.0": the point's number
    ("seq-count@length=0", r"length must be an integer >= 1, got 0"),
    ("seq-modsum@length=-2", r"length must be an integer >= 1, got -2"),
    ("seq-sparse@target=[0,1,2,3,4,0,1]", r"target=\[0,1,2,3,4,0,1\] has the token 4, outside the vocabulary 0..3"),
    ("seq-sparse@length=3,target=[0,-1,2]", r"has the token -1, outside the vocabulary 0..3"),
    ("seq-kl@target=[0,1]", r"target=\[0,1\] has 2 tokens, the sequences have length 7"),
    ("seq-count@target=[0,1,2,3,0,1,2]", r"point of 'seq-count' has no target; its point is set by steps"),
    ("seq-count@steps=-1", r"steps must be an integer >= 0 .*got -1"),
    ("seq-count@steps=1.5", r"steps must be an integer >= 0 .*got 1.5"),
    ("seq-count@steps=1..2", r"steps=1..2 must be a number"),
    ("seq-count@temperature=1", r"has no temperature; its point is set by steps"),
])
def test_bad_points_are_refused_naming_the_value(problem_id, message):
    with pytest.raises(InvalidPointError, match=message):
        get_problem(problem_id)


def test_bad_arguments_of_the_distribution_are_refused_naming_the_value():
    weights = policy_weights(4)
    with pytest.raises(ValueError, match=r"length must be an integer >= 1, got 0"):
        AutoregressiveSequence(weights, 0)
    with pytest.raises(ValueError, match=r"vocab must be an integer >= 2 .*got 0"):
        policy_weights(0)
    with pytest.raises(InvalidPointError, match=r"target=\[0,0,0\] is given, but only seq-sparse and seq-kl have a target"):
        sequences.sequence_problem("count", length=3, target=(0, 0, 0))
    with pytest.raises(ValueError, match=r"missing w_out"):
        AutoregressiveSequence({k: v for k, v in weights.items() if k != "w_out"}, 3)
    with pytest.raises(ValueError, match=r"weight w_hh has shape \(2, 48, 16\): expected the batch shape \(\)"):
        AutoregressiveSequence({**weights, "w_hh": weights["w_hh"].expand(2, 48, 16)}, 3)
    with pytest.raises(ValueError, match="w_ih"):
        AutoregressiveSequence({**weights, "w_ih": torch.full_like(weights["w_ih"], math.nan)}, 3, validate_args=True)


def test_the_sweep_measures_sequence_problems(tmp_path):
    """The CLI's cells for the group baselines and the relaxations against S, rows written (the figure's data)."""
    import benchmarks.variance as variance
    from benchmarks.results import RunFolder

    out = tmp_path / "run"
    code = variance.main(["--objectives", "seq-sparse@length=3", "--estimators", "reinforce_grpo", "gumbel_softmax",
                          "--samples", "2", "8", "--estimates", "200", "--no-report", "--out", str(out)])
    assert code == 0
    rows = RunFolder(out).rows
    assert len(rows) == 4 and {row["n_samples"] for row in rows} == {2, 8}
    assert all(row["family"] == "autoregressive" and row["n_params"] == 1780 and math.isfinite(row["bias_norm"])
               and row["reference"] == "enumeration of 4^3 = 64 sequences" for row in rows)


def test_torch_func_per_sample_gradients_match_autograd():
    from torch.func import grad, vmap

    weights = {k: v.float() for k, v in get_problem("seq-count@length=3,steps=2").point().items()}
    samples = AutoregressiveSequence(weights, 3).sample((5,))
    per_sample = vmap(grad(lambda w, z: AutoregressiveSequence(w, 3).log_prob(z)), in_dims=(None, 0))(weights, samples)
    leaves = {k: v.clone().requires_grad_() for k, v in weights.items()}
    one = torch.autograd.grad(AutoregressiveSequence(leaves, 3).log_prob(samples[2]), list(leaves.values()))
    for name, gradient in zip(leaves, one):
        torch.testing.assert_close(per_sample[name][2], gradient)
    support = AutoregressiveSequence(weights, 3).enumerate_support()
    assert support.shape == (64, 3, 4) and torch.equal(support, all_sequences(4, 3, torch.float32))


def test_a_family_name_belongs_to_one_class():
    from estimators.families import FAMILY_BY_CLASS, register_family

    assert FAMILY_BY_CLASS[AutoregressiveSequence] == "autoregressive"
    register_family(AutoregressiveSequence, "autoregressive")  # the same class again: no change

    class Other(torch.distributions.Categorical):
        pass

    with pytest.raises(ValueError, match="family name 'autoregressive' is already taken by AutoregressiveSequence"):
        register_family(Other, "autoregressive")
    with pytest.raises(ValueError, match="AutoregressiveSequence is already registered as family 'autoregressive'"):
        register_family(AutoregressiveSequence, "sequences")
    assert FAMILY_BY_CLASS[AutoregressiveSequence] == "autoregressive" and Other not in FAMILY_BY_CLASS
