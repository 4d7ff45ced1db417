"""Drawing the optimizer races (grader/export/plot.py): the file is a valid PNG, and what it shows is the
student's own paths (a change in one optimizer changes that optimizer's panels and nothing else)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from grader import labs

from grader.export import plot, trajectories
from grader.run.engine import worker_config
from grader.sandbox.host import Sandbox
from grader.export.trajectories import SURFACES, Race
from tests.conftest import REPO, TEST_LIMITS

pytest.importorskip("matplotlib")  # the plot extra; scripts/setup and CI install it

LAB = labs.load("lab2")
assert LAB.plot is not None
PATHS = LAB.plot
OPTIMIZERS = tuple(PATHS.optimizers)
SCHEDULES = trajectories.schedules(PATHS)
STEPS = 60  # on both surfaces: enough to tell paths apart, quick to run


def _races(folder: Path, optimizers=OPTIMIZERS) -> list[Race]:
    return _traced(folder, optimizers)[0]


def _traced(folder: Path, optimizers=OPTIMIZERS) -> tuple[list[Race], list[trajectories.Curve]]:
    with Sandbox(folder / "lab2", worker_config(LAB), TEST_LIMITS) as sandbox:
        sandbox.start()
        return trajectories.race(sandbox, PATHS, SURFACES, optimizers, STEPS), trajectories.curves(sandbox, PATHS)


def read_png(path: Path) -> tuple[dict[str, object], list[tuple[bytes, bytes]]]:
    """The PNG's header fields and its chunks, after checking the signature and every chunk's CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind!r}"
        chunks.append((kind, body))
        at += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    channels = {2: 3, 6: 4}[colour]
    assert len(pixels) == height * (1 + width * channels * depth // 8), "image data of the wrong size"
    return {"width": width, "height": height, "depth": depth, "channels": channels}, chunks


def text_chunks(chunks: list[tuple[bytes, bytes]]) -> dict[str, str]:
    found = {}
    for kind, body in chunks:
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            found[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            found[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\0")
            compressed, rest = rest[0], rest[2:]
            _, _, rest = rest.partition(b"\0")  # language tag
            _, _, text = rest.partition(b"\0")  # translated keyword
            found[key.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode("utf-8")
    return found


def pixels(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(path)


@pytest.fixture(scope="module")
def reference_drawing(tmp_path_factory):
    races, curves = _traced(REPO / "solutions")
    out = tmp_path_factory.mktemp("plot") / "reference.png"
    return races, plot.draw(races, out, "reference", metadata={"module": "solutions"}, curves=curves)


SCHEDULE_NAMES = [s.name for s in SCHEDULES]


def test_drawing_is_a_valid_png_of_the_size_it_reports(reference_drawing):
    _, drawing = reference_drawing
    header, _ = read_png(drawing.path)
    assert (header["width"], header["height"]) == (drawing.width, drawing.height)
    assert drawing.width > 800 and drawing.height > 600
    image = pixels(drawing.path)
    assert image.shape[:2] == (drawing.height, drawing.width)
    assert len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 50  # a picture, not a blank page


def test_drawing_has_one_panel_per_optimizer_and_surface_plus_an_overview_each(reference_drawing):
    _, drawing = reference_drawing
    expected = {(s.name, key) for s in SURFACES for key in (plot.OVERVIEW, *OPTIMIZERS)}
    expected |= {(plot.SCHEDULES, key) for key in (plot.OVERVIEW, *SCHEDULE_NAMES)}
    assert set(drawing.panels) == expected
    for left, top, right, bottom in drawing.panels.values():
        assert 0 <= left < right <= drawing.width and 0 <= top < bottom <= drawing.height
        assert right - left > 150 and bottom - top > 150


def test_png_metadata_records_the_student_paths_that_were_drawn(reference_drawing):
    races, drawing = reference_drawing
    _, chunks = read_png(drawing.path)
    record = json.loads(text_chunks(chunks)["dlkit"])
    assert record["module"] == "solutions"
    assert len(record["paths"]) == len(races)
    for entry, race in zip(record["paths"], races):
        assert (entry["surface"], entry["optimizer"]) == (race.surface.name, race.optimizer)
        assert entry["steps"] == race.yours.steps == STEPS
        assert entry["final"] == race.yours.points[-1].tolist()
        assert entry["departs"] is None and entry["stopped"] == ""
    assert [(c["schedule"], c["values"], c["departs"]) for c in record["schedules"]] == \
        [(name, trajectories.SCHEDULE_STEPS, None) for name in SCHEDULE_NAMES]


def _panel(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    return image[top:bottom, left:right]


def test_changing_one_optimizer_redraws_its_panels_and_nothing_else(reference_drawing, submission, tmp_path):
    """The picture is drawn from the student's own paths: a dampened momentum, all else the reference,
    changes the momentum panels and the overviews, and leaves every other panel pixel for pixel alike."""
    _, reference = reference_drawing
    folder = submission("lab2", """
        def momentum(w, dw, state, lr=0.01, mu=0.9):
            v = mu * state.get("v", np.zeros_like(w)) + (1 - mu) * dw
            state["v"] = v
            return w - lr * v, state
    """)
    races, curves = _traced(folder)
    drawing = plot.draw(races, tmp_path / "mutant.png", "reference", metadata={"module": "solutions"}, curves=curves)
    assert drawing.panels == reference.panels
    before, after = pixels(reference.path), pixels(drawing.path)
    for key, box in drawing.panels.items():
        changed = not np.array_equal(_panel(before, box), _panel(after, box))
        assert changed == (key[0] != plot.SCHEDULES and key[1] in ("momentum", plot.OVERVIEW)), key
    record = json.loads(text_chunks(read_png(drawing.path)[1])["dlkit"])
    momentum = [p for p in record["paths"] if p["optimizer"] == "momentum"]
    assert [p["departs"] for p in momentum] == [1, 1]
    assert all(p["final"] != p["torch_final"] for p in momentum)


def test_changing_one_schedule_redraws_the_schedule_panels_only(reference_drawing, submission, tmp_path):
    _, reference = reference_drawing
    folder = submission("lab2", """
        def step_decay(lr0, gamma, step_size, t):
            return lr0 * gamma ** ((t + 1) // step_size)
    """)
    races, curves = _traced(folder)
    drawing = plot.draw(races, tmp_path / "mutant.png", "reference", metadata={"module": "solutions"}, curves=curves)
    before, after = pixels(reference.path), pixels(drawing.path)
    for key, box in drawing.panels.items():
        changed = not np.array_equal(_panel(before, box), _panel(after, box))
        assert changed == (key in {(plot.SCHEDULES, "step_decay"), (plot.SCHEDULES, plot.OVERVIEW)}), key
    record = json.loads(text_chunks(read_png(drawing.path)[1])["dlkit"])
    assert [c["departs"] for c in record["schedules"]] == [None, None, 9]


def test_stubs_draw_torch_paths_only_and_say_so(tmp_path):
    races = _races(REPO / "assignments", ["sgd", "adam"])
    drawing = plot.draw(races, tmp_path / "stubs.png", "stubs")
    read_png(drawing.path)
    record = json.loads(text_chunks(read_png(drawing.path)[1])["dlkit"])
    assert {(p["steps"], p["stopped"]) for p in record["paths"]} == {(0, "not implemented yet")}
    assert set(drawing.panels) == {(s.name, k) for s in SURFACES for k in (plot.OVERVIEW, "sgd", "adam")}


def test_missing_names_the_extra_to_install_only_when_matplotlib_is_absent(monkeypatch):
    assert plot.missing() == ""
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    assert "pip install 'dlkit[plot]'" in plot.missing() and "matplotlib" in plot.missing()
