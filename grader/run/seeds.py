"""Official seeds: derived from an instructor's secret and the submission itself, shown to students
only as an opaque token.

A fixed, public seed lets a student record the inputs of one official run and submit a lookup table.
So official runs (``dlkit grade --secret-file``, the Gradescope bundle, nbgrader autograde) draw their
inputs from a seed that nobody can compute without the secret, and that changes with the submission:

    token = "dk1-" + base32(HMAC-SHA256(secret, "token" | lab | identity | digest of the files))[:16]
    seed  = first 4 bytes of HMAC-SHA256(secret, "seed" | token)

``identity`` is the submission's name (the student's folder, Gradescope's submission id, nbgrader's
student id) and the digest covers every file graded: a table recorded in one official run lives in
files whose own seed is another, unknown one. The same files of the same student always get the same
seed, so a regrade is reproducible, and ``dlkit check LAB --replay TOKEN --secret-file FILE`` replays
an official run from its token alone. The secret never enters a student release (``dlkit release``
writes none) and no worker can read it (it lies outside every worker's walls).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

SECRET_BYTES = 16  # the shortest secret accepted
TOKEN = re.compile(r"^dk1-[a-z2-7]{16}$")


class SecretError(ValueError):
    """A secret file that cannot be used, or a token that is not one."""


@dataclass(frozen=True)
class Official:
    """The seed an official run grades a submission with, and the token that stands for it."""

    seed: int
    token: str


def read_secret(path: Path) -> bytes:
    """The secret in ``path`` (surrounding whitespace removed); at least ``SECRET_BYTES`` bytes."""
    try:
        secret = path.read_bytes().strip()
    except OSError as error:
        raise SecretError(f"cannot read the secret file {path}: {error.strerror or error}") from None
    if len(secret) < SECRET_BYTES:
        raise SecretError(f"the secret in {path} is too short ({len(secret)} bytes; at least {SECRET_BYTES})")
    return secret


def new_secret() -> bytes:
    """A new random secret (43 URL-safe characters)."""
    return secrets.token_urlsafe(32).encode()


def write_secret(path: Path) -> bytes:
    """A new random secret, written to ``path`` (which must not exist) readable by its owner only."""
    secret = new_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secret + b"\n")
    return secret


def official(secret: bytes, lab: str, identity: str, digest: str) -> Official:
    """The official seed and token of submission ``identity``'s files (``digest``) on ``lab``."""
    mac = hmac.new(secret, b"\0".join([b"dlkit token", lab.encode(), identity.encode(), digest.encode()]),
                   hashlib.sha256).digest()
    token = "dk1-" + base64.b32encode(mac[:10]).decode().lower()
    return Official(replay(secret, token), token)


def replay(secret: bytes, token: str) -> int:
    """The seed that ``token`` stands for under ``secret``."""
    if not TOKEN.match(token):
        raise SecretError(f"'{token}' is not a replay token (they look like dk1-abcdefghijklmnop)")
    return int.from_bytes(hmac.new(secret, b"dlkit seed\0" + token.encode(), hashlib.sha256).digest()[:4], "big")
