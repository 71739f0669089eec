"""Stateful estimators (reinforce_ema, reinforce_nvil, relax): built with their hyperparameters, their state
saved with state_dict() as tensors and numbers (loadable with weights_only=True) and restored exactly, and a
VAE training run that uses one resumes bit-for-bit from its checkpoint, which never unpickles an object."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributions as D

import benchmarks.vae as vae_cli
import estimators
from benchmarks.checkpoints import CheckpointError, checkpoint_path, load_checkpoint
from benchmarks.harness import surrogate_and_gradients
from benchmarks.tasks import get_problem
from tests.helpers import training_interrupted_at

PROBLEM = "tucker-0.45@theta=-2"
ROWS = 8  # independent estimates per call

# Non-default hyperparameters of each stateful estimator (so that a restore into an instance built with the
# defaults, or a state_dict that forgot a hyperparameter-dependent value, would show).
STATEFUL = {
    "reinforce_ema": {"decay": 0.5},
    "reinforce_nvil": {"lr": 0.1},
    "relax": {"tau": 0.3, "lr": 0.02},
}


def call(estimator, problem, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(surrogate, gradient estimates) of one call, from a fixed global seed."""
    torch.manual_seed(seed)
    surrogate, grads = surrogate_and_gradients(estimator, problem, ROWS, 1)
    return surrogate.detach(), grads.detach()


def run_calls(estimator, problem, seeds) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [call(estimator, problem, seed) for seed in seeds]


def identical(a, b) -> bool:
    return all(torch.equal(sa, sb) and torch.equal(ga, gb) for (sa, ga), (sb, gb) in zip(a, b, strict=True))


def round_trip(state: dict, path: Path) -> dict:
    torch.save(state, path)
    return torch.load(path, weights_only=True)  # tensors, numbers and dicts of them only


@pytest.mark.parametrize("name", sorted(STATEFUL))
@pytest.mark.parametrize("into", ["fresh", "used"])
def test_a_saved_state_restores_exactly(name, into, tmp_path):
    """30 calls, save, load (weights_only) into another instance built with the same hyperparameters: the next
    calls of both, from the same seeds, agree bit for bit; an instance without the state does not."""
    spec, hparams, problem = estimators.get_spec(name), STATEFUL[name], get_problem(PROBLEM)
    trained = spec.make(**hparams)
    run_calls(trained, problem, range(30))
    loaded = round_trip(trained.state_dict(), tmp_path / "state.pt")

    restored = spec.make(**hparams)
    if into == "used":  # state from elsewhere must be replaced, not merged
        run_calls(restored, problem, range(100, 107))
    restored.load_state_dict(loaded)

    next_seeds = range(1000, 1005)
    expected = run_calls(trained, problem, next_seeds)
    assert identical(run_calls(restored, problem, next_seeds), expected)

    unrestored = run_calls(spec.make(**hparams), problem, next_seeds)
    assert not all(torch.equal(ga, gb) for (_, ga), (_, gb) in zip(unrestored, expected)), \
        "a fresh instance gives the same gradients: the test could not tell a lost state"


@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_the_empty_state_of_a_never_called_instance_round_trips(name, tmp_path):
    spec, hparams, problem = estimators.get_spec(name), STATEFUL[name], get_problem(PROBLEM)
    never_called = spec.make(**hparams)
    loaded = round_trip(never_called.state_dict(), tmp_path / "empty.pt")
    used = spec.make(**hparams)
    run_calls(used, problem, range(20))
    used.load_state_dict(loaded)  # back to the start
    seeds = range(500, 504)
    assert identical(run_calls(used, problem, seeds), run_calls(spec.make(**hparams), problem, seeds))
    assert torch.load(tmp_path / "empty.pt", weights_only=True) == never_called.state_dict()


@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_state_dict_holds_only_what_weights_only_loads(name, tmp_path):
    """No pickled object: a file written from state_dict() loads with weights_only=True (a class instance in it
    would raise), here with the state of a categorical (vector) problem as well as the scalar one."""
    spec = estimators.get_spec(name)
    estimator = spec.make(**STATEFUL[name])
    logits = torch.zeros(5, 3, requires_grad=True)
    for _ in range(3):
        dist = D.OneHotCategorical(logits=logits)
        estimator(lambda z: (z * torch.arange(3.0)).sum(-1), dist, num_samples=2).mean(0).sum().backward()
    state = round_trip(estimator.state_dict(), tmp_path / "state.pt")
    assert state.keys() == estimator.state_dict().keys()


def test_relax_tau_is_the_starting_temperature_then_the_learned_one():
    relax = estimators.get_spec("relax").make(tau=0.3, lr=0.05)
    assert relax.tau == 0.3 and relax.hparams == {"tau": 0.3, "lr": 0.05}
    problem = get_problem(PROBLEM)
    run_calls(relax, problem, range(1))
    assert relax.tau == pytest.approx(0.3, rel=1e-6)  # the first call's update is pending, applied at the next
    run_calls(relax, problem, range(1, 20))
    assert relax.tau == float(relax.log_tau.detach().exp())
    assert not math.isclose(relax.tau, 0.3, rel_tol=1e-3), "RELAX learned nothing about its temperature"
    assert estimators.get_spec("relax").make().tau == 0.5  # the declared default


def test_relax_tau_survives_a_round_trip(tmp_path):
    spec = estimators.get_spec("relax")
    relax = spec.make(tau=0.3, lr=0.05)
    run_calls(relax, get_problem(PROBLEM), range(10))
    restored = spec.make(tau=0.3, lr=0.05)
    restored.load_state_dict(round_trip(relax.state_dict(), tmp_path / "relax.pt"))
    assert restored.tau == relax.tau != 0.3


@pytest.mark.parametrize("name,hparams", [("relax", {"tau": 0.2}), ("reinforce_ema", {"decay": 0.5}),
                                          ("reinforce_nvil", {"lr": 0.1})])
def test_a_stateful_estimator_refuses_hyperparameters_per_call(name, hparams):
    estimator = estimators.get_spec(name).make()
    bits = D.Bernoulli(logits=torch.zeros(3, requires_grad=True))
    with pytest.raises(estimators.HyperparameterError) as info:
        estimator(lambda z: z, bits, 1, **hparams)
    message = str(info.value)
    key, value = next(iter(hparams.items()))
    assert repr(name) in message and "when built" in message
    assert f"estimators.get_spec({name!r}).make({key}={value!r})" in message


def test_stateful_instances_record_their_hyperparameters():
    assert estimators.get_spec("reinforce_ema").make(decay=0.5).hparams == {"decay": 0.5}
    assert estimators.get_spec("reinforce_ema").make().hparams == {"decay": 0.9}
    assert estimators.get_spec("reinforce_nvil").make(lr=0.1).hparams == {"lr": 0.1}
    assert estimators.get_spec("relax").make(lr=0.02).hparams == {"tau": 0.5, "lr": 0.02}
    # and use them
    assert estimators.get_spec("reinforce_ema").make(decay=0.5).baseline.decay == 0.5
    assert estimators.get_spec("reinforce_nvil").make(lr=0.1).lr == 0.1


@pytest.mark.parametrize("name,hparams,constraint", [
    ("reinforce_ema", {"decay": 1.0}, "decay in [0, 1)"),
    ("reinforce_ema", {"decay": -0.1}, "decay in [0, 1)"),
    ("reinforce_nvil", {"lr": 0.0}, "lr > 0"),
    ("relax", {"tau": -0.5}, "tau > 0"),
    ("relax", {"lr": float("nan")}, "lr > 0"),
])
def test_a_value_breaking_its_constraint_is_refused_when_built(name, hparams, constraint):
    with pytest.raises(estimators.HyperparameterError) as info:
        estimators.get_spec(name).make(**hparams)
    message = str(info.value)
    key, value = next(iter(hparams.items()))
    assert repr(name) in message and key in message and constraint in message and f"{key}={value!r}" in message


def test_an_unknown_hyperparameter_is_refused_when_built():
    with pytest.raises(estimators.HyperparameterError, match="'reinforce_ema' has no hyperparameter 'tau'"):
        estimators.get_spec("reinforce_ema").make(tau=1.0)


# --- VAE training with a stateful estimator: interrupted, resumed, bit-identical -------------------------

STEPS = 40
TRAIN = ["--latent", "bernoulli:4", "--hidden", "8", "--steps", str(STEPS), "--evals", "2", "--grad-estimates", "20",
         "--iw-samples", "5", "--iw-points", "50", "--no-report"]
COMPARED = ["tau", "train_neg_elbo", "test_neg_elbo", "grad_variance_trace", "grad_bias_norm", "grad_cosine",
            "test_iw_bound"]


def interrupted_run(estimator: str, out: Path) -> None:
    """A run stopped between its checkpoint at step STEPS/2 and its end, as a killed job leaves it."""
    with training_interrupted_at(STEPS // 2 + 10):
        assert vae_cli.main(["--estimators", estimator, *TRAIN, "--out", str(out)]) == 130
    assert list(pd.read_csv(out / "results.csv").step) == [STEPS // 2]


@pytest.mark.parametrize("estimator", ["reinforce_ema", "relax"])
def test_a_vae_run_with_a_stateful_estimator_resumes_bit_identically(estimator, tmp_path):
    straight_out, broken_out = tmp_path / "straight", tmp_path / "broken"
    assert vae_cli.main(["--estimators", estimator, *TRAIN, "--out", str(straight_out)]) == 0
    interrupted_run(estimator, broken_out)
    saved = load_checkpoint(next((broken_out / "checkpoints").glob(f"*{estimator}*.pt")), "cpu")
    assert saved["step"] == STEPS // 2 and saved["estimator"]  # the estimator's learned state is in it
    assert vae_cli.main(["--estimators", estimator, *TRAIN, "--out", str(broken_out), "--resume"]) == 0

    straight = pd.read_csv(straight_out / "results.csv").set_index("step")
    resumed = pd.read_csv(broken_out / "results.csv").set_index("step")
    assert list(resumed.index) == list(straight.index) == [STEPS // 2, STEPS]
    for column in COMPARED:
        for step in (STEPS // 2, STEPS):
            a, b = resumed.loc[step, column], straight.loc[step, column]
            assert a == b or (pd.isna(a) and pd.isna(b)), (column, step, a, b)


def _plant(path: str) -> dict:
    """What unpickling the hostile checkpoint below would run: it leaves a file behind."""
    Path(path).write_text("code ran while loading a checkpoint")
    return {}


class Hostile:
    """An object whose unpickling calls _plant; torch.load(weights_only=True) must refuse it."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (_plant, (self.marker,))


def hostile_checkpoint(path: Path, marker: Path) -> None:
    legit = torch.load(path, weights_only=True)
    torch.save({**legit, "estimator": Hostile(marker)}, path)


def test_loading_a_checkpoint_with_a_pickled_object_is_refused(tmp_path):
    marker, path = tmp_path / "planted", tmp_path / "c.pt"
    torch.save({"model": {}, "step": 1, "estimator": Hostile(marker)}, path)
    with pytest.raises(CheckpointError, match="holds a pickled Python object"):
        load_checkpoint(path, "cpu")
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file does run code when loaded the old way
    assert marker.exists()


def test_resume_from_a_checkpoint_with_a_pickled_object_refuses_it(tmp_path, capsys):
    out, marker = tmp_path / "run", tmp_path / "planted"
    interrupted_run("reinforce_ema", out)
    checkpoint = next((out / "checkpoints").glob("*reinforce_ema*.pt"))
    hostile_checkpoint(checkpoint, marker)
    capsys.readouterr()
    code = vae_cli.main(["--estimators", "reinforce_ema", *TRAIN, "--out", str(out), "--resume"])
    err = capsys.readouterr().err
    assert not marker.exists(), "resuming ran code from the checkpoint"
    assert code == 1 and "holds a pickled Python object" in err and str(checkpoint) in err and "Traceback" not in err
    assert list(pd.read_csv(out / "results.csv").step) == [STEPS // 2]  # not trained on from a refused file
    assert checkpoint_path(out, next(iter(pd.read_csv(out / "results.csv").run_id))) == checkpoint
