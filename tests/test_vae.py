"""The VAE task on the embedded digits, on a budget of seconds."""
import json
import math
import re

import pandas as pd
import pytest
import torch

import benchmarks.vae as vae_cli
import estimators
from benchmarks.data import load_dataset
from benchmarks.harness import draw_estimates, problem_metrics
from benchmarks.metrics import gradient_metrics
from benchmarks.tasks.vae import encoder_layers, gram_matrix, squared_norms, vae_problem
from benchmarks.vae_model import VAE, Latent, LatentSpecError
from tests.helpers import Z, training_interrupted_at

BUDGET = ["--steps", "300", "--evals", "2", "--grad-estimates", "200", "--iw-samples", "10", "--no-report"]


@pytest.fixture(scope="module")
def gaussian_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae") / "run"
    assert vae_cli.main(["--latent", "gaussian:20", "--estimators", "pathwise", "reinforce", "--out", str(out),
                         *BUDGET]) == 0
    frame = pd.read_csv(out / "results.csv")
    return frame[frame.step == frame.step.max()].set_index("estimator"), out


def test_pathwise_trains_better_than_reinforce_on_digits(gaussian_run):
    last, _ = gaussian_run
    assert last.loc["pathwise", "test_neg_elbo"] < last.loc["reinforce", "test_neg_elbo"]
    assert last.loc["pathwise", "test_iw_bound"] <= last.loc["pathwise", "test_neg_elbo"] + 1e-6


def test_pathwise_encoder_gradient_variance_is_orders_of_magnitude_lower(gaussian_run):
    last, _ = gaussian_run
    assert last.loc["pathwise", "grad_variance_trace_hi"] * 100 < last.loc["reinforce", "grad_variance_trace_lo"]


def test_reports_cli_renders_the_vae_run(gaussian_run):
    from reports.__main__ import main as reports_main

    _, out = gaussian_run
    assert reports_main([str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "test -ELBO" in page and "pathwise" in page and (out / "curves.png").stat().st_size > 10_000


def test_gram_matrix_norms_equal_direct_parameter_gradients():
    torch.manual_seed(0)
    model = VAE(30, Latent.parse("categorical:3x4"), (16, 8)).double()
    x = (torch.rand(7, 30) > 0.5).double()
    cotangents = torch.randn(4, 7, 12, dtype=torch.float64)
    direct = []
    for c in cotangents:
        grads = torch.autograd.grad(model.encoder(x), list(model.encoder.parameters()), c)
        direct.append(sum(float(g.square().sum()) for g in grads))
    torch.testing.assert_close(squared_norms(encoder_layers(model, x), cotangents), torch.tensor(direct, dtype=torch.float64))


@pytest.mark.parametrize("latent", ["gaussian:4", "bernoulli:6", "categorical:3x4"])
def test_every_compatible_estimator_trains_the_vae(latent):
    """Registry-wide: every estimator of the latent's family takes optimizer steps, no VAE code edited."""
    data = load_dataset("digits")
    spec_latent = Latent.parse(latent)
    x = data.binarize(data.train[:32], "threshold")
    for spec in estimators.list_estimators(include_reference=False):
        if not spec.supports(spec_latent.family):
            continue
        torch.manual_seed(0)
        model = VAE(data.pixels, spec_latent, (32, 16))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        estimator = spec.make()  # bound to its declared defaults
        for _ in range(3):
            loss, value = model.loss(x, estimator, {}, num_samples=max(1, spec.min_samples))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert torch.isfinite(torch.tensor(value)), spec.name
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.encoder.parameters()), spec.name


@pytest.mark.parametrize("argv,message", [
    (["--latent", "gaussian"], "gaussian:D, bernoulli:D or categorical:LxK"),
    (["--dataset", "cifar"], "choose one of digits, mnist, binarized_mnist"),
    (["--latent", "gaussian:4", "--estimators", "gumbel_softmax"], "these do: measure_valued"),
    (["--dataset", "mnist", "--data-dir", "/nonexistent-gradbench"], "not found in"),
    (["--latent", "gaussian:0"], "latent 'gaussian:0' has no randomness to learn: D and L must be >= 1 and K >= 2"),
    (["--latent", "categorical:3x1"], "has no randomness to learn"),
    (["--latent", "categorical:0x4"], "has no randomness to learn"),
    (["--latent", "gaussian:-3"], "D and L must be >= 1"),  # a sign, not an unknown latent
])
def test_bad_input_is_a_message(tmp_path, capsys, argv, message):
    assert vae_cli.main(argv + ["--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err


def test_an_anneal_that_never_acts_within_the_run_is_noted(tmp_path, capsys):
    assert vae_cli.main(["--latent", "bernoulli:4", "--hidden", "8", "--estimators", "gumbel_softmax", "--steps", "20",
                         "--evals", "1", "--grad-estimates", "0", "--iw-samples", "2", "--anneal", "0.01", "--no-report",
                         "--out", str(tmp_path / "run")]) == 0
    assert ("note: --anneal 0.01 changes tau every 1000 steps (--anneal-every), and these runs take 20: tau stays "
            "at its start") in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    # Found by a new user: --grad-estimates 1 trained every run and then failed each one; a negative --anneal
    # was taken and ignored; --lr -1 was called a temperature.
    (["--grad-estimates", "1"], "--grad-estimates must be 0 (off) or >= 2, got 1"),
    (["--anneal", "-0.01"], "argument --anneal: must be a finite number >= 0, got -0.01"),
    (["--anneal", "nan"], "argument --anneal: must be a finite number >= 0, got nan"),
    (["--lr", "-1"], "argument --lr: must be a finite number > 0, got -1"),
    (["--tau-min", "0"], "argument --tau-min: must be a finite number > 0, got 0"),
])
def test_bad_option_values_are_refused_as_they_are_parsed(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        vae_cli.main(["--latent", "gaussian:4", *argv])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_sampled_kl_with_relaxed_estimator_stops_that_run_only(tmp_path, capsys):
    out = tmp_path / "run"
    code = vae_cli.main(["--latent", "categorical:3x4", "--estimators", "gumbel_softmax", "reinforce", "--kl", "sampled",
                         "--steps", "20", "--evals", "1", "--grad-estimates", "0", "--iw-samples", "5", "--no-report",
                         "--out", str(out)])
    captured = capsys.readouterr()  # the run loop lists units left out on stdout, with their reasons
    assert code == 0 and "use --kl analytic" in captured.out + captured.err
    assert set(pd.read_csv(out / "results.csv").estimator) == {"reinforce"}


def test_latent_parsing():
    assert Latent.parse("categorical:20x10").code_size == 200
    assert Latent.parse("gaussian:20").param_size == 40
    with pytest.raises(LatentSpecError):
        Latent.parse("categorical:20")


def test_an_interrupted_run_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one(tmp_path):
    """Interrupt between the checkpoint at step 100 and the end at step 200 (at the 150th call of VAE.loss,
    evaluation calls included): --resume repeats the steps since step 100 only and ends bit-for-bit where a
    run that was never interrupted ends (same data order, RNG and optimizer state)."""
    argv = ["--latent", "categorical:3x4", "--estimators", "gumbel_softmax", "--steps", "200", "--evals", "2",
            "--grad-estimates", "20", "--iw-samples", "5", "--no-report"]
    assert vae_cli.main(argv + ["--out", str(tmp_path / "straight")]) == 0

    with training_interrupted_at(150):
        assert vae_cli.main(argv + ["--out", str(tmp_path / "broken")]) == 130
    assert list(pd.read_csv(tmp_path / "broken" / "results.csv").step) == [100]
    assert vae_cli.main(argv + ["--out", str(tmp_path / "broken"), "--resume"]) == 0

    straight = pd.read_csv(tmp_path / "straight" / "results.csv").set_index("step")
    resumed = pd.read_csv(tmp_path / "broken" / "results.csv").set_index("step")
    assert list(resumed.index) == [100, 200]
    # the hygiene columns cover every step since the start across the resume: the checkpoint carries them
    assert resumed.loc[200, "load_avg_start"] == resumed.loc[100, "load_avg_start"]
    assert resumed.loc[200, "timed_cpu_s"] > resumed.loc[100, "timed_cpu_s"]
    assert 0 <= resumed.loc[200, "timed_wait_share"] < 10  # the run-queue wait since the start, carried over
    for column in ["train_neg_elbo", "test_neg_elbo", "grad_variance_trace", "test_iw_bound", "train_neg_elbo_relaxed",
                   "train_neg_elbo_hard"]:
        assert resumed.loc[200, column] == straight.loc[200, column], column


def test_a_corrupt_checkpoint_is_a_message_and_the_other_runs_go_on(tmp_path, capsys):
    common = ["--latent", "categorical:3x4", "--steps", "20", "--evals", "2", "--grad-estimates", "0",
              "--iw-samples", "5", "--no-report", "--out", str(tmp_path / "r")]
    assert vae_cli.main(["--estimators", "gumbel_softmax", *common]) == 0
    unfinished = pd.read_csv(tmp_path / "r" / "results.csv").query("step < 20")  # as if killed after step 10
    (tmp_path / "r" / "results.json").write_text(unfinished.to_json(orient="records"))
    checkpoint = next((tmp_path / "r" / "checkpoints").glob("*gumbel_softmax*.pt"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # truncated, as by a killed machine
    # exit 1: a run that cannot resume is an error, said with its fix; the other runs still go on
    assert vae_cli.main(["--estimators", "gumbel_softmax", "reinforce", *common, "--resume"]) == 1
    assert "cannot be read" in capsys.readouterr().err
    final = pd.read_csv(tmp_path / "r" / "results.csv")
    assert set(final[final.step == 20].estimator) == {"reinforce"}


@pytest.mark.parametrize("latent", ["gaussian:5", "bernoulli:7", "categorical:4x3"])
def test_closed_form_kl_equals_torch_distributions(latent):
    spec = Latent.parse(latent)
    params = torch.randn(6, spec.param_size, dtype=torch.float64) * 3
    q = spec.posterior(params)
    expected = torch.distributions.kl_divergence(q, spec.prior(params).expand(q.batch_shape))
    torch.testing.assert_close(spec.kl_to_prior(q), expected)


def test_float32_gram_pass_on_centred_draws_matches_float64():
    """The N-estimate Gram pass runs in float32; on centred cotangents of a 784-wide encoder it must agree
    with float64 far inside the sampling error (1/sqrt(N) ~ 10% here)."""
    torch.manual_seed(0)
    model = VAE(784, Latent.parse("categorical:20x10"))
    x = (torch.rand(100, 784) < 0.13).float()
    problem = vae_problem(model, x)
    draws = draw_estimates(estimators.get("gumbel_softmax", tau=1.0), problem, 100, 1)
    centred = (draws - draws.double().mean(0).float()).reshape(100, 100, -1)
    layers = encoder_layers(model, x)
    layers64 = [(w.double(), h.double(), None if m is None else m.double()) for w, h, m in layers]
    torch.testing.assert_close(squared_norms(layers, centred).double(), squared_norms(layers64, centred.double()),
                               rtol=1e-4, atol=0.0)
    gram = gram_matrix(layers, centred[:20]).double()
    torch.testing.assert_close(gram, gram_matrix(layers64, centred[:20].double()), rtol=1e-4, atol=1e-4 * float(gram.abs().max()))


@pytest.mark.parametrize("n", [20, 60])  # 20: Cholesky (vectors independent); 60 > rank 35 of eta: eigh
def test_encoder_figures_through_the_embedding_equal_those_of_the_explicit_parameter_gradients(n):
    """The VAE's figures come from gradient_metrics on an isometric embedding of the mapped estimates; on a
    small model the same gradient_metrics on the explicit encoder-parameter gradients (autograd, one per
    estimate) gives the same numbers, intervals included (bias_z_max aside: embedded coordinates mean nothing)."""
    torch.manual_seed(0)
    model = VAE(30, Latent.parse("bernoulli:5"), (16, 8)).double()
    x = (torch.rand(7, 30) > 0.5).double()
    problem = vae_problem(model, x)
    draws = draw_estimates(estimators.get("reinforce"), problem, n, 2, dtype=torch.float64)
    embedded = problem_metrics(draws, problem, torch.float64)
    params = list(model.encoder.parameters())

    def explicit(eta_gradient):
        grads = torch.autograd.grad(model.encoder(x), params, eta_gradient.reshape(7, -1))
        return torch.cat([g.reshape(-1) for g in grads])

    direct = gradient_metrics(torch.stack([explicit(g) for g in draws]), explicit(problem.reference().gradient))
    assert embedded["reference"] == "exact (enumeration)"
    for name in ("variance_trace", "variance_trace_lo", "variance_trace_hi", "bias_norm", "bias_norm_lo", "bias_norm_hi",
                 "mse", "mse_lo", "mse_hi", "cosine", "snr", "snr_lo", "snr_hi", "rel_bias", "bias_sq_debiased"):
        assert embedded[name] == pytest.approx(direct[name], rel=1e-7, abs=1e-12), name
    assert math.isnan(embedded["bias_z_max"]) and math.isnan(embedded["variance_max"])


@pytest.mark.statistical
def test_a_stateful_estimator_is_measured_with_the_state_it_learned_in_training():
    """The moving-average baseline trained on 200 steps gives lower encoder-gradient variance than a fresh
    one (whose first call has baseline 0, i.e. plain REINFORCE): the trained instance is the one measured."""
    from benchmarks.vae import encoder_gradient_row

    torch.manual_seed(0)
    model = VAE(30, Latent.parse("bernoulli:5"), (16, 8))
    x = (torch.rand(20, 30) > 0.5).float()
    spec = estimators.get_spec("reinforce_ema")
    trained = spec.make(decay=0.9)
    for _ in range(200):
        model.loss(x, trained, {}, 1)
    problem = vae_problem(model, x)
    learned = encoder_gradient_row(trained, spec, problem, {}, 2000, 1, seed=1)
    fresh = encoder_gradient_row(spec.make(decay=0.9), spec, problem, {}, 2000, 1, seed=1)
    assert learned["grad_variance_trace_hi"] < fresh["grad_variance_trace_lo"], (learned, fresh)
    assert trained.baseline.calls == 200  # measuring used a copy: the training run's state is untouched


def test_several_latents_and_both_kl_forms_in_one_run_get_a_table_and_curves_each(tmp_path):
    out = tmp_path / "run"
    assert vae_cli.main(["--latent", "gaussian:4", "categorical:3x4", "--kl", "analytic", "sampled",
                         "--estimators", "pathwise", "reinforce", "--steps", "30", "--evals", "1",
                         "--grad-estimates", "50", "--iw-samples", "5", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "results.csv")
    runs = set(zip(frame.latent, frame.kl, frame.estimator))
    assert runs == {(latent, kl, name) for kl in ("analytic", "sampled")
                    for latent, name in [("gaussian:4", "pathwise"), ("gaussian:4", "reinforce"),
                                         ("categorical:3x4", "reinforce")]}
    assert frame.grad_variance_trace.notna().all()
    page = (out / "index.html").read_text()
    assert "gaussian:4 latent" in page and "categorical:3x4 latent" in page
    assert "pathwise kl=sampled" in page and "reinforce kl=analytic" in page
    assert (out / "curves-gaussian-4.png").exists() and (out / "curves-categorical-3x4.png").exists()


def test_a_non_finite_loss_stops_that_run_with_a_message_and_keeps_its_earlier_points(
        tmp_path, capsys, estimator_that_diverges):
    out = tmp_path / "run"
    assert vae_cli.main(["--latent", "categorical:3x4", "--estimators", estimator_that_diverges, "reinforce",
                         "--steps", "20", "--evals", "2", "--grad-estimates", "0", "--iw-samples", "5",
                         "--out", str(out)]) == 0
    # steps 0-9 make calls 1-10, the relaxed and hard training -ELBO at step 10 calls 11 and 12: step 12 the 15th
    assert "stopped at step 12: the loss is not finite" in capsys.readouterr().err
    frame = pd.read_csv(out / "results.csv")
    assert list(frame[frame.estimator == estimator_that_diverges].step) == [10]
    assert list(frame[frame.estimator == "reinforce"].step) == [10, 20]
    assert "test_diverging" in (out / "index.html").read_text()  # listed among the stopped runs


def test_resume_refuses_changed_training_settings(tmp_path, capsys):
    common = ["--latent", "categorical:3x4", "--estimators", "reinforce", "--evals", "1", "--grad-estimates", "0",
              "--iw-samples", "5", "--no-report", "--out", str(tmp_path / "r")]
    assert vae_cli.main([*common, "--steps", "10"]) == 0
    assert vae_cli.main([*common, "--steps", "20", "--resume"]) == 2
    assert "was run with --steps 10, not 20" in capsys.readouterr().err
    assert vae_cli.main(["--resume", "--steps", "10"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err


def test_resume_refuses_a_folder_without_recorded_settings(tmp_path, capsys):
    common = ["--latent", "categorical:3x4", "--estimators", "reinforce", "--steps", "10", "--evals", "1",
              "--grad-estimates", "0", "--iw-samples", "5", "--no-report", "--out", str(tmp_path / "r")]
    assert vae_cli.main(common) == 0
    meta_path = tmp_path / "r" / "run.json"
    meta = json.loads(meta_path.read_text())
    del meta["settings"]  # as written before settings were recorded
    meta_path.write_text(json.dumps(meta))
    assert vae_cli.main([*common, "--resume"]) == 2
    assert "older gradbench" in capsys.readouterr().err


def test_finished_runs_are_recognised_from_row_columns():
    rows = [{"latent": "categorical:3x4", "kl": "analytic", "estimator": "gumbel_softmax", "tau0": 1.0, "seed": 0,
             "device": "cpu", "iw_samples": 5},
            {"latent": "categorical:3x4", "estimator": "reinforce", "tau0": None, "seed": 0, "step": 10},
            {"latent": "categorical:3x4", "estimator": "reinforce_loo", "tau0": float("nan"), "seed": 1,
             "iw_samples": 5}]
    assert vae_cli.finished_runs(rows) == {"categorical:3x4|analytic|gumbel_softmax|tau0=1.0|seed=0|cpu",
                                           "categorical:3x4|analytic|reinforce_loo|tau0=None|seed=1|cpu"}


@pytest.mark.statistical
def test_estimated_reference_standard_error_matches_its_actual_error(monkeypatch):
    """On an enumerable latent, force the sampled reference and compare its reported standard error with its
    actual error against the exact gradient, both in encoder-parameter space, over 30 replicates:
    mean ||J^T (ref - exact)||^2 must equal mean se^2 within Z standard errors of the former (level ALPHA
    under normality of the replicate mean; fixed seeds)."""
    import benchmarks.tasks.vae as vae_task
    torch.manual_seed(0)
    model = VAE(30, Latent.parse("categorical:3x4"), (16, 8))
    x = (torch.rand(10, 30) > 0.5).float()
    exact = vae_problem(model, x, reference_estimates=50).reference()
    assert exact.method == "exact (enumeration)" and exact.standard_error == 0.0
    monkeypatch.setattr(vae_task, "MAX_ENUMERATION", 0)
    layers = encoder_layers(model, x)
    errors, ses = [], []
    for replicate in range(30):
        reference = vae_problem(model, x, reference_estimates=50, seed=replicate).reference()
        error = (reference.gradient - exact.gradient).float().reshape(1, 10, -1)
        errors.append(float(squared_norms(layers, error)[0]))
        ses.append(reference.standard_error ** 2)
    assert reference.method.startswith("reinforce_loo")  # chosen from the registry's metadata
    errors, ses = torch.tensor(errors), torch.tensor(ses)
    assert abs(errors.mean() - ses.mean()) < Z * errors.std() / 30 ** 0.5, (errors.mean(), ses.mean())


def test_iw_points_are_a_random_subset_the_same_for_every_run():
    first = vae_cli.iw_subset(10_000, 2000)
    assert torch.equal(first, vae_cli.iw_subset(10_000, 2000)) and len(set(first.tolist())) == 2000
    assert first.max() > 9000 and first.min() < 1000  # spread over the whole (possibly ordered) test set


def test_a_learned_temperature_is_recorded_and_a_schedule_does_not_apply_to_it(tmp_path, capsys):
    """RELAX learns log tau (Grathwohl et al. 2018): --anneal applies to stateless estimators only, the CLI
    says so, and each row records the temperature the run actually used, while Gumbel-Softmax's rows
    follow the schedule."""
    out = tmp_path / "run"
    assert vae_cli.main(["--latent", "bernoulli:4", "--estimators", "relax", "gumbel_softmax", "--tau", "0.8",
                         "--anneal", "0.01", "--anneal-every", "5", "--tau-min", "0.5", "--steps", "30",
                         "--evals", "2", "--grad-estimates", "0", "--iw-samples", "5", "--hidden", "16", "8",
                         "--no-report", "--out", str(out)]) == 0
    assert "relax is stateful and learns its temperature" in capsys.readouterr().out
    frame = pd.read_csv(out / "results.csv")
    relax = frame[frame.estimator == "relax"].sort_values("step")
    scheduled = frame[frame.estimator == "gumbel_softmax"].sort_values("step")
    # the schedule at the last step taken before each evaluation point (steps 14 and 29)
    expected = [max(0.5, 0.8 * math.exp(-0.01 * ((step - 1) // 5) * 5)) for step in scheduled["step"]]
    assert scheduled["tau"].tolist() == pytest.approx(expected)
    assert (relax["tau"] != 0.8).all() and relax["tau"].tolist() != pytest.approx(expected)
    assert all(json.loads(h)["tau"] == pytest.approx(t) for h, t in zip(relax["hparams"], relax["tau"]))


# --- timing hygiene and unfinished runs on the page -----------------------------------------------------

TINY = ["--latent", "bernoulli:4", "--hidden", "8", "--steps", "30", "--evals", "2", "--grad-estimates", "50",
        "--iw-samples", "5", "--no-report"]
HYGIENE = ["load_avg_start", "load_avg_end", "timed_cpu_s", "timed_wall_s", "timed_wait_share", "cores"]


def table_row(page: str, opening: str, label: str) -> str:
    """The one table row of the page that opens with `opening` ('<tr><td>': the table of every run; '<tr><th>':
    the summary) and whose first cell's text begins with `label`."""
    rows = [row for row in re.findall(re.escape(opening) + r".*?</tr>", page, re.S)
            if re.sub(r"<[^>]+>", "", re.split(r"</t[dh]>", row)[0]).startswith(label)]
    assert len(rows) == 1, (opening, label, rows)
    return rows[0]


def plant(out, frame: pd.DataFrame) -> None:
    """Rewrite a run folder's results (both files), as a test's planted rows."""
    frame.to_csv(out / "results.csv", index=False)
    (out / "results.json").write_text(frame.to_json(orient="records"))


def test_training_rows_record_their_timing_conditions_and_the_page_flags_them(tmp_path):
    """Every evaluation row records, over the interval its train_seconds covers (every training step since the
    run began), the load average at the run's start and at the row, this process's CPU seconds beside the wall
    seconds, and the cores. Planted rows timed beside another unit, or under a load above the cores, are
    flagged wherever the page shows time (the table, the equal-time summary, a note under the curves), and
    the page says which executor ran; a folder without these columns (an older run) still renders."""
    from benchmarks.executors import cpu_count
    from reports.__main__ import main as reports_main

    out = tmp_path / "run"
    assert vae_cli.main([*TINY, "--estimators", "reinforce", "gumbel_softmax", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == 4 and frame[HYGIENE].notna().all().all()
    assert (frame.load_avg_start >= 0).all() and (frame.load_avg_end >= 0).all()
    assert (frame.timed_wall_s == frame.train_seconds).all() and (frame.timed_cpu_s > 0).all()
    assert (frame.timed_cpu_s <= 1.5 * frame.timed_wall_s * frame.torch_threads + 0.05).all()  # CPU of these steps
    assert (frame.timed_wait_share >= 0).all()
    assert set(frame.cores) == {cpu_count()}
    for _, run in frame.groupby("run_id"):  # since the start: the CPU seconds only grow, the start load is one
        run = run.sort_values("step")
        assert run.timed_cpu_s.is_monotonic_increasing and run.load_avg_start.nunique() == 1

    assert reports_main([str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "<th>executor</th><td>in-process</td>" in page and "<th>concurrency</th><td>1</td>" in page
    assert "concurrent (" not in page

    planted = frame.copy()
    planted.loc[planted.estimator == "reinforce", "concurrency"] = 2
    gumbel = planted.estimator == "gumbel_softmax"
    planted.loc[gumbel, "load_avg_end"] = planted.loc[gumbel, "cores"] + 2.5
    plant(out, planted)
    assert reports_main([str(out)]) == 0
    page = (out / "index.html").read_text()
    for opening in ("<tr><td>", "<tr><th>"):  # the table of every run, the summary's equal-time comparison
        assert "concurrent (2 units at once)" in table_row(page, opening, "reinforce")
        relaxed = table_row(page, opening, "gumbel_softmax")
        assert "under load (load average" in relaxed and "concurrent" not in relaxed
    assert "Timing flagged at 4 of 4 evaluation points plotted: " in page

    old = frame.drop(columns=HYGIENE + ["executor", "concurrency", "torch_threads"])
    plant(out, old)
    meta = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({k: v for k, v in meta.items()
                                              if k not in ("executor", "concurrency", "worker_threads")}))
    assert reports_main([str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "test -ELBO" in page and "Timing flagged" not in page and "<th>executor</th>" not in page


def test_a_run_interrupted_before_any_run_finished_is_marked_unfinished_and_not_ranked(tmp_path):
    """Interrupted in its second half (at the 20th call of VAE.loss), the grid's first run has written its
    step-15 row and no run has its final row: results have no iw_samples column at all. The page still marks
    that run unfinished, in the table and in the summary, where it is not ranked by its final test -ELBO."""
    from reports.__main__ import main as reports_main

    out = tmp_path / "run"
    with training_interrupted_at(20):
        assert vae_cli.main([*TINY, "--estimators", "reinforce", "gumbel_softmax", "--out", str(out)]) == 130
    frame = pd.read_csv(out / "results.csv")
    assert list(frame.step) == [15] and "iw_samples" not in frame
    (estimator,) = frame.estimator

    assert reports_main([str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "unfinished (1 of 1 seeds)" in table_row(page, "<tr><td>", estimator)
    summary = table_row(page, "<tr><th>", estimator)
    assert "unfinished (1 of 1 seeds; last evaluation at step 15)" in summary
    assert "not ranked: unfinished" in summary and "are not ranked by the final test -ELBO" in page


def test_curves_mark_the_points_above_their_clipped_axis():
    """The -ELBO axes end near the 90th percentile (the first evaluations would flatten the curves): a point
    above is drawn as a triangle at the edge, and a note counts them, instead of vanishing without a word."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from reports.vae import curves_figure

    frame = pd.DataFrame([{"label": name, "estimator": name, "seed": 0, "step": step, "train_seconds": step / 10,
                           "test_neg_elbo": value, "grad_variance_trace": 1.0}
                          for name, values in (("reinforce", (40.0, 25.3, 25.25)), ("gumbel_softmax", (25.0, 24.9, 24.6)))
                          for step, value in zip((60, 130, 200), values)])
    fig, axes = curves_figure(frame)
    top = axes[0].get_ylim()[1]
    assert top < 40.0  # the point is above the axis
    for ax in axes[:2]:
        assert [t.get_text() for t in ax.texts] == ["▲ 1 point above the axis (drawn at its edge)"]
        marks = [line for line in ax.lines if line.get_marker() == "^" and line.get_linestyle() == "None"]
        assert sum(len(line.get_ydata()) for line in marks) == 1 and marks[0].get_ydata()[0] == top
    plt.close(fig)


def test_analytic_and_sampled_kl_give_the_same_exact_reference():
    """One objective in two forms: the enumerated gradient with the KL in closed form (added once, at the shared
    point) equals the one with the KL inside the expectation, to float64 rounding. Adding the closed-form KL's
    gradient twice (a mutation trial) changed no variance or bias, yet moved the reference by 10% and the SNR by
    22% on a categorical VAE."""
    from benchmarks.tasks.vae import vae_problem

    torch.manual_seed(0)
    model = VAE(30, Latent.parse("categorical:3x4"), (16, 8)).double()
    x = (torch.rand(7, 30) > 0.5).double()
    analytic, sampled = (vae_problem(model, x, kl=kl).reference() for kl in ("analytic", "sampled"))
    assert analytic.method == sampled.method == "exact (enumeration)"
    torch.testing.assert_close(analytic.gradient, sampled.gradient, rtol=1e-10, atol=1e-13)
