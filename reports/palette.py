"""One look per estimator for a whole run: estimators of one family share a hue, and marker and line
style tell them apart. Every plot, table and page of a run takes its looks from `Palette(run's
estimators)`, so an estimator has the same colour everywhere in it.

Families (the groups of the leaderboard and of the figures' rows):

    score function      REINFORCE and its baselines (moving average, leave-one-out, NVIL, group ones)
    control variates    MuProp, REBAR, RELAX: a score-function term plus a learned/relaxed control variate
    coupled (ARM)       ARM, DisARM: antithetic couplings of binary samples
    relaxed             Gumbel-Softmax (Concrete): gradients of a relaxed objective
    straight-through    straight-through, ST Gumbel-Softmax, Gumbel-Rao (ST-GS Rao-Blackwellised),
                        ReinMax: hard forward, surrogate backward
    continuous          pathwise, implicit reparameterisation, measure-valued
    reference           the exact (enumeration) estimator

The name decides (a plugin named `reinforce_*` joins the score-function family), else "other".
"""
from __future__ import annotations

import dataclasses
import fnmatch

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# (family, name patterns, colour map): the order is the order of the figures' rows and the tables.
FAMILIES = [
    ("score function", ["reinforce*", "*grpo*", "rloo*"], "Blues"),
    ("control variates", ["muprop*", "rebar*", "relax*"], "Purples"),
    ("coupled (ARM)", ["arm", "disarm", "*arm_*", "u2g*"], "Greens"),
    ("relaxed", ["gumbel_softmax*", "concrete*"], "Oranges"),
    ("straight-through", ["straight_through*", "st_*", "reinmax*", "gumbel_rao*"], "Reds"),
    ("continuous", ["pathwise*", "implicit*", "measure_valued*"], "teal"),
    ("reference", ["exact*"], "Greys"),
    ("other", ["*"], "copper"),
]
FAMILY_ORDER = [name for name, _, _ in FAMILIES]
# Teal, light to dark (a sequential map of its own: the blues of the score-function family share
# problems with the continuous estimators, so the two must not look alike).
_TEAL = matplotlib.colors.LinearSegmentedColormap.from_list("teal", ["#e0f2f1", "#4db6ac", "#00695c", "#002b25"])
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
STYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 2)), (0, (8, 2, 2, 2))]
MAX_PER_PANEL = 7  # estimators per panel: more are hard to tell apart


def family_of(name: str, declared: str | None = None) -> str:
    if isinstance(declared, str) and declared in FAMILY_ORDER:
        return declared
    for family, patterns, _ in FAMILIES:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            return family
    return "other"


@dataclasses.dataclass(frozen=True)
class Look:
    family: str
    colour: str
    marker: str
    style: object


class Palette:
    """Looks for a fixed set of estimator names: within a family, shades from dark to mid-light of its
    colour map, and a marker and line style of their own."""

    def __init__(self, names, declared: dict[str, str] | None = None):
        declared = declared or {}
        names = sorted(set(names))
        self.family = {name: family_of(name, declared.get(name)) for name in names}
        self.looks: dict[str, Look] = {}
        for family, _, cmap_name in FAMILIES:
            members = [n for n in names if self.family[n] == family]
            cmap = _TEAL if cmap_name == "teal" else plt.get_cmap(cmap_name)
            # Dark to mid: the lightest end of a sequential map is invisible on white.
            shades = np.linspace(0.9, 0.45, max(len(members), 2))[:len(members)] if len(members) > 1 else [0.75]
            for i, (name, shade) in enumerate(zip(members, shades)):
                self.looks[name] = Look(family, matplotlib.colors.to_hex(cmap(shade)), MARKERS[i % len(MARKERS)],
                                        STYLES[i % len(STYLES)])

    def __getitem__(self, name: str) -> Look:
        if name not in self.looks:  # a name the run did not list: its own family's first look
            return Palette([name]).looks[name]
        return self.looks[name]

    def ordered(self, names) -> list[str]:
        """Names by family (in FAMILY order), then by name."""
        return sorted(set(names), key=lambda n: (FAMILY_ORDER.index(self[n].family), n))

    def groups(self, names) -> list[tuple[str, list[str]]]:
        """(label, names) per panel: one family per panel, a large family split into parts of at most
        MAX_PER_PANEL ('score function (1/2)')."""
        out = []
        for family in FAMILY_ORDER:
            members = [n for n in self.ordered(names) if self[n].family == family]
            parts = [members[i:i + MAX_PER_PANEL] for i in range(0, len(members), MAX_PER_PANEL)]
            for k, part in enumerate(parts):
                out.append((family if len(parts) == 1 else f"{family} ({k + 1}/{len(parts)})", part))
        return out

    def swatch(self, name: str) -> str:
        """An HTML colour swatch for tables (the same colour as in the plots)."""
        return (f"<span class=swatch style='background:{self[name].colour}' "
                f"title='{self[name].family}'></span>")
