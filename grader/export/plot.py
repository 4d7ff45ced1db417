"""Draw optimizer races (``grader.export.trajectories``) to a PNG: the student's paths over torch.optim's.

One block of panels per surface (four to a row). The first panel of a block overlays all
of the student's paths, as the lecture compares SGD, Momentum and Adam on one picture;
then one panel per optimizer shows the student's path (solid, coloured) over
torch.optim's (dashed, black), with a red cross where the student's path first leaves
torch's and the reason when it stopped early. A last block does the same for the
learning-rate schedules, lr against t. matplotlib is an optional extra (``pip install 'dlkit[plot]'``);
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
    from grader.export.trajectories import Curve, Race, Surface

INSTALL = "pip install 'dlkit[plot]'   (or: pip install matplotlib)"
OVERVIEW = "all"  # the panel key of a block's first panel, where every path (or curve) of the student's is drawn
SCHEDULES = "schedules"  # the block of the learning-rate schedules, after the surfaces' blocks
COLUMNS = 4  # panels per row; a surface with more panels wraps onto a second row
PANEL_INCHES = (3.6, 3.0)
DPI = 90
# one colour per optimizer (matplotlib's tab10), the same in every panel
COLOURS = {"sgd": "#1f77b4", "momentum": "#ff7f0e", "nesterov": "#2ca02c", "adagrad": "#9467bd",
           "rmsprop": "#8c564b", "adadelta": "#e377c2", "adam": "#d62728",
           "exponential_decay": "#1f77b4", "inverse_time_decay": "#ff7f0e", "step_decay": "#2ca02c"}


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


def draw(races: Sequence[Race], output: Path, title: str, metadata: dict[str, Any] | None = None,
         curves: Sequence[Curve] = ()) -> Drawing:
    """Draw the races (a block of panels per surface) and the schedules' curves (one more block) to
    ``output`` (PNG); ``metadata`` is stored in the file as JSON under the key "dlkit"."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    surfaces = list(dict.fromkeys(r.surface for r in races))
    optimizers = list(dict.fromkeys(r.optimizer for r in races))
    blocks = [(where.name, [OVERVIEW, *optimizers]) for where in surfaces]
    if curves:
        blocks.append((SCHEDULES, [OVERVIEW, *(c.schedule.name for c in curves)]))
    columns = min(COLUMNS, max(len(keys) for _, keys in blocks))
    heights = [-(-len(keys) // columns) for _, keys in blocks]  # rows of panels per block
    figure = Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * sum(heights) + 0.4), dpi=DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=11)
    grid = figure.subplots(sum(heights), columns, squeeze=False)
    axes: dict[tuple[str, str], Any] = {}
    row = 0
    for (block, keys), height in zip(blocks, heights):
        for i in range(height * columns):
            ax = grid[row + i // columns][i % columns]
            if i < len(keys):
                axes[(block, keys[i])] = ax
            else:
                ax.set_axis_off()
        row += height
    for where in surfaces:
        mine = [r for r in races if r.surface is where]
        _overview(axes[(where.name, OVERVIEW)], where, mine)
        for race in mine:
            _panel(axes[(where.name, race.optimizer)], race)
    if curves:
        _schedules_overview(axes[(SCHEDULES, OVERVIEW)], curves)
        for curve in curves:
            _schedule_panel(axes[(SCHEDULES, curve.schedule.name)], curve)
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {**(metadata or {}), "paths": [_summary(r) for r in races],
              "schedules": [_curve_summary(c) for c in curves]}
    figure.savefig(output, format="png", metadata={"Title": title, "Software": "dlkit (matplotlib)",
                                                   "dlkit": json.dumps(record, sort_keys=True)})
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
    drawn = [r for r in races if r.yours.steps]
    for r in drawn:
        _line(ax, r.yours.points, where.steps, color=COLOURS[r.optimizer], linewidth=1.3, label=r.optimizer)
    _legend_or(ax, bool(drawn), where.legend, "none of your optimizers\ntook a step yet")


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
        _cross(ax, x, y, f"leaves torch at step {race.departs}")
    _finish(ax, race.yours.brief)


def _schedules_overview(ax: Any, curves: Sequence[Curve]) -> None:
    ax.set_title("yours, learning-rate schedules\nlr at t = 0, 1, 2, ...", fontsize=9)
    drawn = [curve for curve in curves if curve.yours]
    for curve in drawn:
        ax.plot(range(len(curve.yours)), curve.yours, color=COLOURS[curve.schedule.name], linewidth=1.5,
                label=curve.schedule.name)
    _legend_or(ax, bool(drawn), "upper right", "none of your schedules\nreturned a value yet")
    _schedule_axes(ax, curves[0])


def _legend_or(ax: Any, drawn: bool, loc: str, empty: str) -> None:
    """An overview's legend, or, in red, ``empty`` when it has nothing drawn."""
    if drawn:
        ax.legend(fontsize=7, loc=loc, framealpha=0.85)
    else:
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="#a00000")


def _schedule_panel(ax: Any, curve: Curve) -> None:
    settings = ", ".join(f"{k}={v:g}" for k, v in curve.schedule.args.items())
    source = curve.schedule.source.removeprefix("torch.optim.lr_scheduler.")
    ax.set_title(f"{curve.schedule.name}({settings}, t)\nexpected: lr_scheduler.{source}", fontsize=8)
    if curve.yours:
        ax.plot(range(len(curve.yours)), curve.yours, color=COLOURS[curve.schedule.name], linewidth=2.2, alpha=0.75,
                marker="o", markersize=3, label="yours")
    ax.plot(range(len(curve.expected)), curve.expected, color="black", linewidth=0.9, linestyle="--",
            label="expected")
    if curve.departs is not None:
        _cross(ax, curve.departs, curve.yours[curve.departs], f"differs from t = {curve.departs}")
    _finish(ax, curve.brief)
    _schedule_axes(ax, curve)


def _cross(ax: Any, x: float, y: float, label: str) -> None:
    """The red cross where the student's first parts from the reference."""
    ax.plot(x, y, marker="x", color="red", markersize=10, markeredgewidth=2.2, linestyle="none", label=label)


def _finish(ax: Any, brief: str) -> None:
    """A panel's legend, and in red why the student's path or curve stopped early, if it did."""
    ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    if brief:
        ax.text(0.03, 0.03, brief, transform=ax.transAxes, ha="left", va="bottom", fontsize=8,
                color="#a00000", bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})


def _schedule_axes(ax: Any, curve: Curve) -> None:
    """The same window for every schedule panel: t over the traced range, lr from 0 to a little above lr0."""
    ax.set_xlim(-1, len(curve.expected))
    ax.set_ylim(0, max(curve.expected) * 1.15)
    ax.set_xlabel("t", fontsize=8)
    ax.tick_params(labelsize=7)


def _curve_summary(curve: Curve) -> dict[str, Any]:
    return {"schedule": curve.schedule.name, "args": dict(curve.schedule.args), "values": len(curve.yours),
            "last": curve.yours[-1] if curve.yours else None, "departs": curve.departs, "stopped": curve.stopped}


def _summary(race: Race) -> dict[str, Any]:
    return {"surface": race.surface.name, "optimizer": race.optimizer, "hyper": dict(race.hyper),
            "steps": race.yours.steps, "final": race.yours.points[-1].tolist(),
            "torch_final": race.reference.points[-1].tolist(), "departs": race.departs, "stopped": race.yours.stopped}
