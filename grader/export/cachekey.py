"""What a cached grade is keyed on: everything that can change it.

``dlkit grade`` keeps one feedback JSON per submission and does not grade a submission again while
the JSON's ``fingerprint`` matches. The fingerprint is a SHA-256 of:

- the submission's files (names and contents, as ``grader.intake`` read them);
- the seed the batch passes for that submission;
- the lab's declaration (the source of ``grader/labs/LAB.py`` and of its withheld module);
- the reference solution (the bytes of every ``.py`` file of ``solutions/LAB/``);
- the kit: its version and the source of every module of the ``grader`` package (an engine fix
  regrades, as a new release would);
- the profile: the budget's numbers (examples per check, shrink calls), not only its name;
- the feedback format version.

So ``--profile thorough`` after a default run regrades, editing a lab's checks regrades, a new
reference regrades; a run with nothing changed regrades nothing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from grader import REPO, labs
from grader.declare.spec import Lab

PACKAGE = REPO / "grader"


def kit_version() -> str:
    try:
        return metadata.version("dlkit")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def kit_digest() -> str:
    """The kit's version and a digest of every Python file of the grader package."""
    return _files_digest(PACKAGE, sorted(PACKAGE.rglob("*.py")), kit_version().encode() + b"\0")


def declaration_digest(lab: Lab) -> str:
    """A digest of the source of the lab's declaration module and of its withheld module, if any."""
    h = hashlib.sha256()
    for module in filter(None, (labs.MODULES.get(lab.name, ""), lab.withheld)):
        found = importlib.util.find_spec(module)
        origin = Path(found.origin) if found is not None and found.origin else None
        h.update(module.encode() + b"\0" + (origin.read_bytes() if origin is not None and origin.is_file() else b"-"))
    return h.hexdigest()


def reference_digest(lab: Lab, solutions: Path) -> str:
    """A digest of the reference solution's Python files ("none" where there is no reference)."""
    folder = solutions / lab.name
    files = sorted(folder.glob("*.py")) if folder.is_dir() else []
    return _files_digest(folder, files) if files else "none"


def _files_digest(root: Path, files: list[Path], head: bytes = b"") -> str:
    """A digest of ``head``, then of each file's path under ``root`` and of its bytes."""
    h = hashlib.sha256(head)
    for path in files:
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@dataclass(frozen=True)
class GradeKey:
    """Everything but the submission and its seed that decides a grade."""

    version: int  # the feedback format's
    lab: str
    budget: str  # the profile's numbers, as the Budget's repr
    kit: str
    declaration: str
    reference: str

    def fingerprint(self, files_digest: str, seed: int) -> str:
        """The cache key of one submission graded with ``seed``."""
        parts = (str(self.version), self.lab, str(seed), self.budget, self.kit, self.declaration, self.reference,
                 files_digest)
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def grade_key(lab: Lab, budget: object, solutions: Path, version: int) -> GradeKey:
    return GradeKey(version, lab.name, repr(budget), kit_digest(), declaration_digest(lab),
                    reference_digest(lab, solutions))
