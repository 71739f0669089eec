"""Which hyperparameter a run swept, per estimator: the x-axis of its plots and the columns of its tables.

Every declared hyperparameter can be swept (`--tau`, `--hparam gumbel_rao:k=1,10,100`), and each is
reported as the temperature always was. Within one problem, an estimator's swept hyperparameters are
those whose value differs between its rows. Its x-axis is tau when tau is among them (the question
most users ask), else the first of the others by name; when several are swept at once, the others
split it into one figure per value ("gumbel_rao k=10"), so every curve varies one thing. Problems
where estimators sweep different hyperparameters get one figure per swept name.
"""
from __future__ import annotations

import json
import math

import pandas as pd

LABELS = {"tau": "temperature tau"}
SYMBOLS = {"tau": "&tau;"}
PLAIN_SYMBOLS = {"tau": "τ"}


def _hparams(text) -> dict:
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _format(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def annotate(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with `x_name` (the estimator's swept hyperparameter, None if none), `x` (its value as
    a number, NaN if none or not numeric) and `variant` (the other swept values, '' if none).

    Rows without an `hparams` column (runs written before it existed) fall back to `tau`."""
    frame = frame.copy()
    parsed = (frame["hparams"].map(_hparams) if "hparams" in frame
              else frame.get("tau", pd.Series(math.nan, index=frame.index)).map(
                  lambda t: {} if pd.isna(t) else {"tau": float(t)}))
    x_names, xs, variants = [], [], []
    swept_by_estimator = {}
    for estimator, rows in parsed.groupby(frame["estimator"]):
        names = sorted({name for hp in rows for name in hp})
        varying = [name for name in names if len({json.dumps(hp.get(name)) for hp in rows}) > 1]
        swept_by_estimator[estimator] = sorted(varying, key=lambda n: (n != "tau", n))
    for estimator, hp in zip(frame["estimator"], parsed):
        swept = swept_by_estimator[estimator]
        name = swept[0] if swept else None
        value = hp.get(name) if name else None
        x_names.append(name)
        xs.append(float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan)
        variants.append(" ".join(f"{other}={_format(hp.get(other))}" for other in swept[1:]))
    frame["x_name"], frame["x"], frame["variant"] = x_names, xs, variants
    return frame


def setting(row, with_tau: bool = True) -> str:
    """A row of an annotated frame: its swept hyperparameters as plain text ('τ=0.1', 'c=0.5', 'k=10 τ=1'),
    for the columns and legends that tell a swept estimator's rows apart; for an estimator that sweeps
    nothing, its temperature (its default) where it has one; '' for none. `with_tau=False` leaves tau out
    (settings of the same cost)."""
    hparams = _hparams(row.get("hparams"))
    if not hparams and not pd.isna(row.get("tau", math.nan)):
        hparams = {"tau": float(row["tau"])}  # a run written before the hparams column
    names = [row["x_name"]] if isinstance(row.get("x_name"), str) else []
    names += [part.split("=", 1)[0] for part in str(row.get("variant") or "").split()]
    if not names and "tau" in hparams:
        names = ["tau"]
    return " ".join(f"{PLAIN_SYMBOLS.get(name, name)}={_format(hparams.get(name))}" for name in names
                    if with_tau or name != "tau")


def swept_names(frame: pd.DataFrame) -> list[str]:
    """The distinct swept names of an annotated frame, tau first."""
    names = {n for n in frame["x_name"] if isinstance(n, str)}
    return sorted(names, key=lambda n: (n != "tau", n))


def axis_label(name: str | None) -> str:
    return LABELS.get(name, f"hyperparameter {name}") if name else "no swept hyperparameter"


def column_label(name: str | None, value: float) -> str:
    """A table column head (HTML): '&tau; = 0.1', 'k = 10', or one for estimators that sweep nothing."""
    if not name or (isinstance(value, float) and math.isnan(value)):
        return "defaults (nothing swept)"
    return f"{SYMBOLS.get(name, name)} = {_format(value)}"


def panels(frame: pd.DataFrame) -> list[tuple[str | None, str, pd.DataFrame]]:
    """(swept name, variant, rows) per figure: the estimators sweeping that name plus the unswept ones,
    which draw as horizontal reference lines; with several hyperparameters swept at once, one figure per
    value of the others (variant, e.g. 'k=10'), so that every curve varies one thing. One entry
    (None, '', frame) when nothing is swept."""
    names = swept_names(frame)
    if not names:
        return [(None, "", frame)]
    unswept = frame["x_name"].isna()
    figures = []
    for name in names:
        sweeping = frame["x_name"] == name
        variants = sorted(set(frame.loc[sweeping, "variant"]) - {""})
        plain = sweeping & (frame["variant"] == "")
        if not variants:
            figures.append((name, "", frame[sweeping | unswept]))
        for variant in variants:  # estimators without other swept values appear in each of these figures
            figures.append((name, variant, frame[(sweeping & (frame["variant"] == variant)) | plain | unswept]))
    return figures
