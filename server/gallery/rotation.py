"""The keyed random rotation gallery templates are stored under.

A secret orthogonal matrix derived from the gallery key: cosine similarity between rotated templates is
the same as between the originals, so the search (exact or HNSW) works unchanged, while a template copied
out of the database (a backup, a dump) does not match the face it came from under any other key, nor
raw embeddings computed from that face's photos. It is no encryption: whoever holds rotated templates of
known faces can solve for the matrix, and the key opens all of them.

The matrix comes from SHAKE-256 of the key (Box-Muller to Gaussians, then QR), not from NumPy's random
generator, whose streams may change between NumPy versions: the same key must give the same rotation
on every machine and after every upgrade.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

import numpy as np

DIMENSIONS = 512


@functools.lru_cache(maxsize=4)
def rotation_for(key: bytes, dimensions: int = DIMENSIONS) -> np.ndarray:
    """The orthogonal matrix (float64, dimensions x dimensions) of `key`."""
    count = dimensions * dimensions
    stream = hashlib.shake_256(b"realname gallery rotation\0" + key).digest(count * 8)
    words = np.frombuffer(stream, dtype="<u4").astype(np.float64)
    uniform = (words + 0.5) / 2.0**32  # in (0, 1): the logarithm below is finite
    u1, u2 = uniform[:count], uniform[count:]
    gaussian = (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).reshape(dimensions, dimensions)
    q, r = np.linalg.qr(gaussian)
    matrix = q * np.sign(np.diag(r))  # the sign fix makes the rotation uniformly distributed (Haar)
    matrix.flags.writeable = False  # shared by every caller (cached)
    return matrix


def rotate(matrix: np.ndarray, template: np.ndarray) -> np.ndarray:
    """A unit template under the rotation, float32 (rotations keep the length)."""
    return (matrix @ np.asarray(template, dtype=np.float64)).astype(np.float32)


def key_digest(key: bytes) -> str:
    """What the database keeps to refuse another key at start-up: a keyed hash, useless for the rotation."""
    return hmac.new(key, b"realname gallery key check", hashlib.sha256).hexdigest()
