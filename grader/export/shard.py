"""``dlkit grade --shard K/N``: a deterministic 1/N of the submissions, chosen by name.

A submission belongs to shard ``1 + (first 8 bytes of SHA-256(name) mod N)``. The choice depends on
the folder's name only, not on what else is in the folder of submissions or on the machine, so N
jobs of a Slurm array or of a CI matrix, each listing the same folder, grade every submission
exactly once between them, and a late submission does not move the others to another shard.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``K/N`` with 1 <= K <= N; ValueError with a sentence otherwise."""
        found = SPEC.match(text)
        if not found:
            raise ValueError(f"'{text}' is not K/N (for example 2/8: the second of eight shards)")
        index, count = int(found.group(1)), int(found.group(2))
        if not 1 <= index <= count:
            raise ValueError(f"shard {index}/{count}: K must be between 1 and N")
        return cls(index, count)

    def holds(self, name: str) -> bool:
        return owner(name, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def owner(name: str, count: int) -> int:
    """The shard (1-based, of ``count``) that grades the submission folder ``name``."""
    return 1 + int.from_bytes(hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()[:8], "big") % count
