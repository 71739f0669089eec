"""The public entry `benchmarks.measure` on a user's own cost and distribution, and on registered problems."""
import math

import pytest
import torch
import torch.distributions as D

import estimators
from benchmarks import measure
from benchmarks.tasks import GradientProblem, reference_estimator
from tests.helpers import Z


def users_problem():
    """E[|x - 1|^3], x ~ Laplace(0.5, 2): a cost with no closed form written here, a family with rsample."""
    return GradientProblem(
        id="my-laplace-cube", family="laplace", description="E[|x - 1|^3], x ~ Laplace(0.5, 2)",
        point=lambda: {"loc": torch.tensor(0.5), "scale": torch.tensor(2.0)},
        make_distribution=lambda p, v: D.Laplace(p["loc"], p["scale"], validate_args=v),
        cost=lambda x: (x - 1).abs() ** 3,
    ).with_estimated_reference(n_estimates=20_000, n_samples=10)


@pytest.mark.statistical(checks=2)
def test_a_users_problem_is_measured_against_a_many_sample_reference():
    problem = users_problem()
    pathwise = measure("pathwise", problem, n_estimates=4000, n_samples=1)
    reinforce = measure("reinforce", problem, n_estimates=4000, n_samples=1)
    assert pathwise["reference"] == "pathwise, mean of 20000 estimates x 10 samples"
    assert pathwise["reference_se"] > 0 and pathwise["objective"] == "my-laplace-cube"
    assert pathwise["variance_trace_hi"] < reinforce["variance_trace_lo"]
    # The exact gradient by quadrature (scipy) lies within Z standard errors of the reference.
    from scipy import integrate

    def expected(loc, scale):
        density = lambda x: math.exp(-abs(x - loc) / scale) / (2 * scale)
        return integrate.quad(lambda x: abs(x - 1) ** 3 * density(x), -80, 80, points=[loc, 1], limit=400)[0]

    h = 1e-4
    exact = torch.tensor([(expected(0.5 + h, 2) - expected(0.5 - h, 2)) / (2 * h),
                          (expected(0.5, 2 + h) - expected(0.5, 2 - h)) / (2 * h)], dtype=torch.float64)
    reference = problem.reference()
    assert float((reference.gradient - exact).norm()) < Z * reference.standard_error


def test_measure_takes_ids_and_ready_instances_and_refuses_unsupported_families():
    row = measure("reinforce", "tucker-0.45@theta=-2", n_estimates=500, timing=False)
    assert row["eval_point"] == "theta=-2" and row["reference"] == "closed form" and row["reference_se"] == 0
    assert "time_per_estimate_s" not in row
    instance = estimators.get_spec("reinforce_ema").make()
    timed = measure(instance, "gauss-square-3", spec=estimators.get_spec("reinforce_ema"), n_estimates=500)
    assert timed["estimator"] == "reinforce_ema" and timed["time_per_estimate_s"] > 0
    with pytest.raises(estimators.UnsupportedFamilyError, match="'arm' does not support problem 'gauss-square-3'.*"
                                                                "support 'normal': .*pathwise"):
        measure("arm", "gauss-square-3", n_estimates=10)


def test_measure_leaves_the_global_rng_as_it_was():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    measure("reinforce", "tucker-0.45", n_estimates=100, timing=False)
    assert torch.equal(torch.get_rng_state(), before)


def test_the_reference_estimator_is_chosen_from_metadata():
    assert reference_estimator("normal").name == "pathwise"
    assert reference_estimator("bernoulli").name == "reinforce_loo"
    assert reference_estimator("gamma").name == "implicit_reparam"
    # Capabilities from torch: Poisson has log_prob (score function); Uniform has rsample but a support
    # that moves with its parameters, so only the pathwise gradient is unbiased there.
    assert reference_estimator("poisson").name == "reinforce_loo"
    assert reference_estimator("uniform").name == "pathwise"
    with pytest.raises(estimators.UnsupportedFamilyError, match="no registered unbiased estimator supports"):
        reference_estimator("no-such-family")


def test_a_sweep_row_is_measured_again_by_rerun(tmp_path, capsys):
    """The README's promise: `benchmarks.rerun(row)` gives a sweep row's statistics again, bit for bit. Found by a
    new user: measure(name, problem, seed=the grid seed) did not (the sweep draws each cell with a seed of its
    own). A stateful estimator (its state depends on the seed) and a temperature, at grid seed 1."""
    import json

    import pandas as pd

    from benchmarks import rerun, variance
    from benchmarks.harness import Cell
    from tests.helpers import STATISTICS

    out = tmp_path / "run"
    assert variance.main(["--estimators", "reinforce_nvil", "gumbel_softmax", "--objectives", "tucker-0.499",
                          "--tau", "0.5", "--estimates", "500", "--seed", "1", "--no-report", "--out", str(out)]) == 0
    capsys.readouterr()
    rows = pd.read_csv(out / "results.csv").to_dict("records")
    assert len(rows) == 2
    for row, written in zip(rows, json.loads((out / "results.json").read_text())):
        for source in (row, written):
            again = rerun(source)
            assert again["cell_id"] == row["cell_id"]
            assert {name: again[name] for name in STATISTICS} == {name: written[name] for name in STATISTICS}
    with pytest.raises(ValueError, match="the row's columns make the cell .*but the row says"):
        Cell.from_row({**rows[0], "seed": 0})


def test_the_drawer_returns_n_rows_when_n_is_not_a_multiple_of_the_chunk(monkeypatch):
    """10 estimates in chunks of 3: exactly 10 rows. A last chunk drawn at full size (a mutation trial) gave
    poly-2 at S = 4 16,384 rows for N = 10,000, intervals 22% too narrow for the N the row states."""
    from benchmarks import harness
    from benchmarks.tasks import get_problem

    monkeypatch.setattr(harness, "ELEMENT_BUDGET", 3)
    problem = get_problem("tucker-0.45")
    assert harness.chunk_size(problem, 1, 10) == 3
    assert harness.draw_estimates(estimators.get("reinforce"), problem, 10, 1).shape == (10, 1)
