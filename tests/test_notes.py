"""The lab notes and handouts say what the declarations check: the generated section of every
docs/labN-notes.md is what grader.export.notes makes of the declaration, and the sizes and facts the
notes and handouts state by hand are the ones the strategies draw and PyTorch computes."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from grader import labs
from grader.declare.strategies import pair
from grader.export.notes import BEGIN, END, notes_path, with_section
from grader.labs import lab3
from tests.conftest import REPO


@pytest.mark.parametrize("lab", labs.names())
def test_the_notes_list_exactly_the_checks_and_fixed_inputs_the_declaration_runs(lab):
    spec = labs.load(lab)
    text = notes_path(REPO, spec).read_text(encoding="utf-8")
    assert BEGIN.format(lab=lab) in text and END in text
    assert with_section(text, spec) == text, "stale notes: run 'python -m grader.export.notes'"


def test_the_generated_section_names_each_check_and_its_fixed_inputs():
    text = notes_path(REPO, labs.load("lab3")).read_text(encoding="utf-8")
    section = text.split("### conv2d_forward", 1)[1].split("###", 1)[0]
    assert "reproduces the handout's worked examples (value check; cpu): no drawn inputs, 2 fixed" in section
    assert "→ `[[15.0, 16.0], [6.0, 15.0]]`" in section
    assert "12 drawn inputs with the default profile" in section


def test_lab3_notes_state_the_sizes_conv2d_forward_draws():
    seen: dict[str, set[int]] = defaultdict(set)

    @settings(max_examples=500, database=None, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(lab3.conv_calls())
    def draw(c):
        x, w, _ = c.args
        for key, value in (("N", x.shape[0]), ("C", x.shape[1]), ("F", w.shape[0]), ("K", w.shape[2]),
                           ("K", w.shape[3]), ("HW", x.shape[2]), ("HW", x.shape[3])):
            seen[key].add(value)
        for key in ("stride", "padding"):
            seen[key].update(pair(c.kwargs[key]))
        seen["dilation"].add(c.kwargs["dilation"])

    draw()
    r = {k: (min(v), max(v)) for k, v in seen.items()}
    stated = (f"N {r['N'][0]}..{r['N'][1]}, C {r['C'][0]}..{r['C'][1]}, F {r['F'][0]}..{r['F'][1]}, "
              f"KH, KW {r['K'][0]}..{r['K'][1]} independently, H, W up to {r['HW'][1]}, "
              f"stride {r['stride'][0]}..{r['stride'][1]} and padding {r['padding'][0]}..{r['padding'][1]} each an int "
              f"or a pair (independently), dilation {r['dilation'][0]}..{r['dilation'][1]}")
    notes = " ".join(notes_path(REPO, labs.load("lab3")).read_text(encoding="utf-8").split())
    assert stated in notes


def test_lab3_handout_example_of_a_kernel_longer_than_the_input_is_pytorchs():
    text = " ".join((REPO / "assignments" / "lab3" / "README.md").read_text(encoding="utf-8").split())
    assert "$n = 3$, $k = 4$, $s = 2$, $p = 2$ gives 2 in floor mode and 3 with `ceil_mode=True`" in text
    x = torch.zeros(1, 1, 3, 1)
    sizes = [torch.nn.functional.max_pool2d(x, (4, 1), (2, 1), (2, 0), ceil_mode=ceil).shape[2] for ceil in (False, True)]
    assert sizes == [2, 3]
