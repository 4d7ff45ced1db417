"""Draw optimizer races (``grader.trajectories``) to a PNG: the student's paths over torch.optim's.

One row per surface. The first panel of a row overlays all of the student's paths, as
the lecture compares SGD, Momentum and Adam on one picture; then one panel per
optimizer shows the student's path (solid, coloured) over torch.optim's (dashed,
black), with a red cross where the student's path first leaves torch's and the reason
when it stopped early. matplotlib is an optional extra (``pip install 'dlkit[plot]'``);
it is imported only here, and drawn through the Agg canvas (no display, no pyplot state).
"""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from grader.trajectories import Race, Surface

# The labs with something to draw, and what (dlkit plot LAB).
PLOTS = {"lab2": "your optimizers' paths next to torch.optim's on two 2-D loss surfaces"}
INSTALL = "pip install 'dlkit[plot]'   (or: pip install matplotlib)"
OVERVIEW = "all"  # the panel key of a row's first panel, where every path of the student's is drawn
COLUMNS = 4  # panels per row; a surface with more panels wraps onto a second row
PANEL_INCHES = (3.6, 3.0)
DPI = 90
# one colour per optimizer (matplotlib's tab10), the same in every panel
COLOURS = {"sgd": "#1f77b4", "momentum": "#ff7f0e", "nesterov": "#2ca02c", "adagrad": "#9467bd",
           "rmsprop": "#8c564b", "adadelta": "#e377c2", "adam": "#d62728"}


def missing() -> str:
    """Why plotting cannot run here ("" when it can): the optional extra is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        return f"plotting needs matplotlib, which is not installed; install the plot extra: {INSTALL}"
    return ""


@dataclass(frozen=True)
class Drawing:
    """The PNG written: its size in pixels and where each panel lies in it."""

    path: Path
    width: int
    height: int
    # (surface name, optimizer or OVERVIEW) -> (left, top, right, bottom) in pixels, origin at the top left
    panels: dict[tuple[str, str], tuple[int, int, int, int]] = field(default_factory=dict)


def draw(races: Sequence[Race], output: Path, title: str, metadata: dict[str, Any] | None = None) -> Drawing:
    """Draw the races to ``output`` (PNG); ``metadata`` is stored in the file as JSON under the key "dlkit"."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    surfaces = list(dict.fromkeys(r.surface for r in races))
    optimizers = list(dict.fromkeys(r.optimizer for r in races))
    keys = [OVERVIEW, *optimizers]
    columns = min(COLUMNS, len(keys))
    rows_each = -(-len(keys) // columns)  # rows of panels per surface
    figure = Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows_each * len(surfaces) + 0.4), dpi=DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=11)
    grid = figure.subplots(rows_each * len(surfaces), columns, squeeze=False)
    axes: dict[tuple[str, str], Any] = {}
    for block, where in enumerate(surfaces):
        for i, key in enumerate(keys):
            axes[(where.name, key)] = grid[block * rows_each + i // columns][i % columns]
        for i in range(len(keys), rows_each * columns):
            grid[block * rows_each + i // columns][i % columns].set_axis_off()
        mine = [r for r in races if r.surface is where]
        _overview(axes[(where.name, OVERVIEW)], where, mine)
        for race in mine:
            _panel(axes[(where.name, race.optimizer)], race)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, format="png", metadata={
        "Title": title, "Software": "dlkit (matplotlib)",
        "dlkit": json.dumps({**(metadata or {}), "paths": [_summary(r) for r in races]}, sort_keys=True)})
    # panel boxes, read after the save (the constrained layout is final once drawn)
    width, height = (int(round(v)) for v in figure.bbox.size)
    panels = {}
    for place, ax in axes.items():
        box = ax.get_window_extent()
        panels[place] = (int(box.x0), int(height - box.y1), int(box.x1), int(height - box.y0))
    return Drawing(output, width, height, panels)


def _surface(ax: Any, where: Surface) -> None:
    """Contours of the loss over the surface's window, the start and the minimum."""
    (x0, x1), (y0, y1) = where.window
    xs, ys, zs = _grid(where)
    if where.log_levels:
        levels = np.logspace(-1, np.log10(zs.max()), 14)
    else:
        levels = np.linspace(0, 1, 16)[1:] ** 2 * zs.max()  # evenly spaced in distance from the minimum
    ax.contour(xs, ys, zs, levels=levels, colors="#b0b0b0", linewidths=0.6)
    ax.plot(*where.minimum, marker="*", color="black", markersize=9, linestyle="none")
    ax.plot(*where.start, marker="o", color="black", markersize=4, linestyle="none")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.tick_params(labelsize=7)


@functools.lru_cache(maxsize=8)
def _grid(where: Surface) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loss on a grid over the surface's window (the same for every panel of the surface)."""
    (x0, x1), (y0, y1) = where.window
    xs, ys = np.meshgrid(np.linspace(x0, x1, 240), np.linspace(y0, y1, 200))
    return xs, ys, where.value(np.stack([xs, ys]))


def _line(ax: Any, points: np.ndarray, steps: int, markersize: float = 3.0, **style: Any) -> None:
    """A path; with a dot at every w when the steps are few enough to tell apart."""
    marker = {"marker": "o", "markersize": markersize} if steps <= 100 else {}
    ax.plot(points[:, 0], points[:, 1], **marker, **style)


def _overview(ax: Any, where: Surface, races: Sequence[Race]) -> None:
    _surface(ax, where)
    ax.set_title(f"yours, {where.title}\n{where.formula}", fontsize=9)
    drawn = 0
    for r in races:
        if r.yours.steps:
            _line(ax, r.yours.points, where.steps, color=COLOURS[r.optimizer], linewidth=1.3, label=r.optimizer)
            drawn += 1
    if drawn:
        ax.legend(fontsize=7, loc=where.legend, framealpha=0.85)
    else:
        ax.text(0.5, 0.5, "none of your optimizers\ntook a step yet", transform=ax.transAxes, ha="center",
                va="center", fontsize=9, color="#a00000")


def _panel(ax: Any, race: Race) -> None:
    where = race.surface
    _surface(ax, where)
    settings = ", ".join(f"{k}={v:g}" for k, v in race.hyper.items())
    ax.set_title(f"{race.optimizer} ({settings})\nyours: {race.yours.steps} of {where.steps} steps", fontsize=9)
    if race.yours.steps:
        _line(ax, race.yours.points, where.steps, color=COLOURS[race.optimizer], linewidth=2.2, alpha=0.75,
              label="yours")
    # torch's path on top, thin and dashed: where the two agree it runs down the middle of yours
    _line(ax, race.reference.points, where.steps, color="black", linewidth=0.9, linestyle="--", label="torch.optim",
          markersize=1.5)
    if race.departs is not None:
        x, y = race.yours.points[race.departs]
        ax.plot(x, y, marker="x", color="red", markersize=10, markeredgewidth=2.2, linestyle="none",
                label=f"leaves torch at step {race.departs}")
    ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    if race.yours.brief:
        ax.text(0.03, 0.03, race.yours.brief, transform=ax.transAxes, ha="left", va="bottom", fontsize=8,
                color="#a00000", bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})


def _summary(race: Race) -> dict[str, Any]:
    return {"surface": race.surface.name, "optimizer": race.optimizer, "hyper": dict(race.hyper),
            "steps": race.yours.steps, "final": race.yours.points[-1].tolist(),
            "torch_final": race.reference.points[-1].tolist(), "departs": race.departs, "stopped": race.yours.stopped}
