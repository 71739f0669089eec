"""The VAE report's pictures and its relaxed-vs-hard training loss, on the embedded digits in seconds."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import benchmarks.vae as vae_cli
import estimators
from benchmarks.data import load_dataset
from benchmarks.vae_model import VAE, Latent
from benchmarks.vae_pictures import N_PRIOR, N_RECONSTRUCTIONS, draw_pictures, save_pictures
from benchmarks.vae_training import relaxed_and_hard_neg_elbo
from reports.vae import render_vae_report
from reports.vae_pictures import load_pictures

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--steps", "20", "--evals", "2", "--grad-estimates", "0", "--iw-samples", "5", "--hidden", "32", "16"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two estimators, two seeds, two evaluation points (steps 10 and 20), no report yet."""
    out = tmp_path_factory.mktemp("pictures") / "run"
    assert vae_cli.main(["--latent", "categorical:3x4", "--estimators", "gumbel_softmax", "reinforce",
                         "--seed", "0", "1", "--no-report", "--out", str(out), *SMALL]) == 0
    return out


def test_the_arrays_are_written_at_every_evaluation_point(run):
    frame = pd.read_csv(run / "results.csv")
    assert len(frame) == 8 and frame["pictures"].notna().all()
    originals = None
    for row in frame.itertuples():
        path = run / row.pictures
        assert path.parent.parent == run / "pictures" and path.name == f"step-{row.step:06d}.npz"
        arrays = load_pictures(path)  # allow_pickle=False
        assert arrays["image_shape"].tolist() == [8, 8] and int(arrays["step"]) == row.step
        assert arrays["reconstructions"].shape == (N_RECONSTRUCTIONS, 64) and arrays["prior"].shape == (N_PRIOR, 64)
        for key in ("reconstructions", "prior"):
            assert np.isfinite(arrays[key]).all() and arrays[key].min() >= 0 and arrays[key].max() <= 1
        if originals is None:
            originals = arrays["originals"]
        assert np.array_equal(arrays["originals"], originals)  # the same test images for every run
    assert set(np.unique(originals)) <= {0.0, 1.0}  # binarized, as the model sees them


def test_rendering_reads_files_only_without_torch_or_the_model_code(run):
    """Rendered in a process where torch, benchmarks and estimators cannot be imported, with the
    checkpoints gone: the pictures come from the arrays saved at the evaluation points."""
    copy = run.parent / "copy"
    subprocess.run(["cp", "-r", str(run), str(copy)], check=True)
    for checkpoint in (copy / "checkpoints").glob("*.pt"):
        checkpoint.unlink()
    code = ("import sys\n"
            "for name in ('torch', 'benchmarks', 'estimators'): sys.modules[name] = None\n"
            "from reports.__main__ import main\n"
            f"sys.exit(main([{str(copy)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    page = (copy / "index.html").read_text()
    for step in (10, 20):
        assert (copy / f"pictures-categorical-3x4-reconstructions-step-{step:06d}.png").stat().st_size > 2_000
        assert (copy / f"pictures-categorical-3x4-prior-step-{step:06d}.png").stat().st_size > 2_000
    assert 'src="pictures-categorical-3x4-reconstructions-step-000020.png"' in page  # the last one shown
    assert 'href="pictures-categorical-3x4-prior-step-000010.png"' in page  # the earlier ones linked
    assert "Pictures of seed 0 only (the first of the run&#39;s seeds 0, 1)" in page
    assert (copy / "relaxed-vs-hard.png").exists() and "train relaxed &minus; hard" in page


def test_relaxed_and_hard_losses_are_recorded_and_differ_only_for_gumbel_softmax(run):
    frame = pd.read_csv(run / "results.csv")
    for column in ("train_neg_elbo_relaxed", "train_neg_elbo_hard", "train_relaxation_gap", "train_relaxation_gap_se"):
        assert frame[column].notna().all(), column
    reinforce, relaxed = frame[frame.estimator == "reinforce"], frame[frame.estimator == "gumbel_softmax"]
    # REINFORCE's cost is evaluated at exact samples: rounding them changes nothing, bit for bit
    assert (reinforce.train_neg_elbo_relaxed == reinforce.train_neg_elbo_hard).all()
    assert (reinforce.train_relaxation_gap == 0).all()
    assert (relaxed.train_relaxation_gap != 0).all()
    gap = relaxed.train_neg_elbo_relaxed - relaxed.train_neg_elbo_hard
    assert np.allclose(gap, relaxed.train_relaxation_gap, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("latent,kl", [("bernoulli:6", "analytic"), ("categorical:3x4", "analytic"),
                                       ("gaussian:3", "analytic"), ("categorical:3x4", "sampled")])
def test_every_estimator_but_gumbel_softmax_trains_the_hard_loss_exactly(latent, kl):
    """Registry-wide: relaxed and hard are the same call with the same random numbers, the cost once at
    the estimator's points and once at their rounding. Every estimator that evaluates its cost at exact
    samples (relaxations in its gradient only) gives the same value to the last bit, since rounding a
    hard point returns it unchanged; Gumbel-Softmax's relaxed value differs. Stateful estimators are
    called on copies: the instance is left as it was."""
    data = load_dataset("digits")
    spec_latent = Latent.parse(latent)
    torch.manual_seed(0)
    model = VAE(data.pixels, spec_latent, (32, 16))
    x = data.binarize(data.train[:40], "threshold")
    for spec in estimators.list_estimators(include_reference=False):
        if not spec.supports(spec_latent.family) or spec.name.startswith("test_"):
            continue
        estimator = spec.make()
        if spec.stateful:
            model.loss(x, estimator, {}, max(2, spec.min_samples))  # a state to copy (NVIL builds its network)
            state = json.dumps({k: str(v) for k, v in estimator.state_dict().items()})
        before = torch.get_rng_state()
        try:
            values = relaxed_and_hard_neg_elbo(model, x, estimator, spec, {}, max(2, spec.min_samples), kl, seed=3)
        except estimators.NotApplicableError:  # --kl sampled refuses f at relaxed points (Gumbel-Softmax's samples,
            assert kl == "sampled"             # MuProp's mean, REBAR's control variate): training stops such runs
            continue
        if spec.name == "gumbel_softmax" and spec_latent.kind != "gaussian":
            assert values["train_relaxation_gap"] != 0, spec.name
        else:
            assert values["train_neg_elbo_relaxed"] == values["train_neg_elbo_hard"], spec.name
            assert values["train_relaxation_gap"] == 0 and values["train_relaxation_gap_se"] == 0, spec.name
        assert torch.equal(torch.get_rng_state(), before), spec.name  # the training run's stream is untouched
        if spec.stateful:
            assert json.dumps({k: str(v) for k, v in estimator.state_dict().items()}) == state, spec.name


def test_gumbel_softmax_hard_value_is_the_discrete_elbo_at_its_gumbel_max_samples():
    """The hard value of Gumbel-Softmax equals the -ELBO at argmax(l + g) for the same g, by hand."""
    torch.manual_seed(0)
    latent = Latent.parse("categorical:3x4")
    model = VAE(64, latent, (16,))
    x = (torch.rand(5, 64) > 0.5).float()
    spec = estimators.get_spec("gumbel_softmax")
    values = relaxed_and_hard_neg_elbo(model, x, spec.make(), spec, {"tau": 0.7}, 1, "analytic", seed=11)
    torch.manual_seed(11)
    with torch.no_grad():
        q = latent.posterior(model.encoder(x))
        logits = q.base_dist.logits
        u = torch.rand((1, *logits.shape)).clamp_min_(torch.finfo(torch.float32).tiny)
        scores = logits - torch.log(-torch.log(u))
        hard = torch.nn.functional.one_hot(scores.argmax(-1), 4).float()
        soft = torch.softmax(scores / 0.7, -1)
        kl = latent.kl_to_prior(q)
        by_hand_hard = float((model.reconstruction_cost(x)(hard).mean(0) + kl).mean())
        by_hand_relaxed = float((model.reconstruction_cost(x)(soft).mean(0) + kl).mean())
    assert values["train_neg_elbo_hard"] == pytest.approx(by_hand_hard, rel=1e-5)
    assert values["train_neg_elbo_relaxed"] == pytest.approx(by_hand_relaxed, rel=1e-5)


@pytest.mark.parametrize("latent", ["bernoulli:6", "categorical:3x4"])
def test_discrete_latents_are_decoded_from_hard_samples(latent, monkeypatch):
    decoded = []
    original = VAE.pixel_means

    def spy(self, z):
        decoded.append(z.clone())
        return original(self, z)

    monkeypatch.setattr(VAE, "pixel_means", spy)
    torch.manual_seed(0)
    model = VAE(64, Latent.parse(latent), (16,))
    arrays = draw_pictures(model, (torch.rand(N_RECONSTRUCTIONS, 64) > 0.5).float(), step=7)
    assert len(decoded) == 2 and all(((z == 0) | (z == 1)).all() for z in decoded)
    if latent.startswith("categorical"):
        assert all((z.sum(-1) == 1).all() for z in decoded)  # one-hot
    assert arrays["prior"].shape == (N_PRIOR, 64) and int(arrays["step"]) == 7
    again = draw_pictures(model, (torch.rand(N_RECONSTRUCTIONS, 64) > 0.5).float(), step=7)
    assert np.array_equal(again["prior"], arrays["prior"])  # fixed codes: the same prior pictures every time


def test_a_run_stopped_by_a_non_finite_loss_shows_its_last_finite_pictures_and_says_so(
        tmp_path, estimator_that_diverges):
    out = tmp_path / "run"
    # Steps 0-9 make calls 1-10, the relaxed and hard values at step 10 calls 11 and 12: step 12 makes the 15th.
    assert vae_cli.main(["--latent", "categorical:3x4", "--estimators", estimator_that_diverges, "reinforce",
                         "--out", str(out), *SMALL]) == 0
    page = (out / "index.html").read_text()
    assert "test_diverging: stopped at step 12: the loss is not finite" in page
    assert "its last finite pictures, from step 10, are shown" in page
    assert (out / "pictures-categorical-3x4-reconstructions-step-000020.png").exists()
    assert "no gap to plot" in page and not (out / "relaxed-vs-hard.png").exists()  # both train on exact samples

    # Pictures that are not finite (a model that diverged at an evaluation point) are passed over too.
    frame = pd.read_csv(out / "results.csv")
    last = frame[frame.estimator == "reinforce"].sort_values("step").iloc[-1]
    arrays = load_pictures(out / last.pictures)
    arrays["reconstructions"][:] = np.nan
    save_pictures(out / last.pictures, arrays)
    page = render_vae_report(out).read_text()
    assert "reinforce: the pictures at step 20 are not finite" in page


def test_a_folder_written_before_pictures_and_relaxed_losses_still_renders(run):
    old = run.parent / "old"
    subprocess.run(["cp", "-r", str(run), str(old)], check=True)
    subprocess.run(["rm", "-r", str(old / "pictures")], check=True)
    frame = pd.read_csv(old / "results.csv")
    frame = frame.drop(columns=[c for c in frame if c == "pictures" or c.startswith("train_neg_elbo_")
                                or c.startswith("train_relaxation")])
    frame.to_csv(old / "results.csv", index=False)
    page = render_vae_report(old).read_text()
    assert "saved no pictures" in page and "did not record the relaxed and the hard training -ELBO" in page
    assert "test -ELBO" in page and not list(old.glob("pictures-*.png"))

    # pictures named in the rows but missing from the folder (copied without them): a note, not an error
    frame = pd.read_csv(run / "results.csv")
    frame.to_csv(old / "results.csv", index=False)
    page = render_vae_report(old).read_text()
    assert "cannot be read" in page and "No readable pictures" in page


def test_reconstruction_column_titles_and_relaxation_legends_tell_the_runs_apart():
    """Found by a new user in a --kl analytic sampled grid: the reconstruction columns' titles overlapped
    ('disarm kl=analytidisarm kl=sampled'), and the relaxed-vs-hard figure drew disarm kl=analytic and
    kl=sampled as identical lines with identical legend entries."""
    import matplotlib.pyplot as plt

    from reports.vae import relaxation_figure
    from reports.vae_pictures import reconstructions_figure
    from tests.helpers import inside_and_apart

    labels = ["disarm kl=analytic", "disarm kl=sampled", "gumbel_rao kl=analytic", "gumbel_rao kl=sampled",
              "st_gumbel_softmax tau=0.5 kl=analytic"]
    originals = np.random.default_rng(0).random((4, 64))
    columns = [(label, {"reconstructions": originals}) for label in labels]
    fig, axes = reconstructions_figure(originals, columns, (8, 8), "reconstructions at step 300")
    inside_and_apart(fig, [ax.title for ax in axes] + fig.texts)
    plt.close(fig)

    frame = pd.DataFrame([{"label": label, "estimator": label.split()[0], "seed": 0, "step": step,
                           "train_neg_elbo_hard": 100.0 - step / 10, "train_neg_elbo_relaxed": 100.0 - step / 10,
                           "train_relaxation_gap": 0.0} for label in labels[:4] for step in (100, 200, 300)])
    fig, axes = relaxation_figure(frame)
    handles, names = axes[0].get_legend_handles_labels()
    looks = {name: (handle.get_color(), handle.get_marker(), handle.get_linestyle())
             for handle, name in zip(handles, names)}
    assert len(set(looks.values())) == len(looks) == 6, looks  # four runs, and hard / relaxed
    plt.close(fig)
