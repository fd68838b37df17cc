"""A person's access request: everything the service holds about one session, in a readable form. Pure.

Biometric data is described (what it is, its size and the SHA-256 of its sealed value, when it was stored),
not dumped. The face images, the person's own pictures, are included (base64 JPEG) only when asked for
explicitly; face templates never are: a template means nothing to a person and is the part most useful
for re-identifying them elsewhere (docs/compliance.md, access requests)."""

from __future__ import annotations

import base64
import re
from typing import Any

FACE_IMAGES = ("reference_face", "live_face_0", "live_face_1", "live_face_2")
DESCRIPTIONS = {
    "reference_face": "the face cut out from the ID photo, aligned (JPEG); the photo itself is never kept",
    "reference_embedding": "the face template computed from the ID photo's face (512 numbers)",
    "live_face": "a still image of the face from the camera, aligned (JPEG); no video is kept",
    "live_embedding": "the face template computed from the camera's faces (their average, 512 numbers)",
    "scene": "a whole camera frame at reduced size, kept only for a person reviewing the check (JPEG)",
    "movement_fingerprint": "how the face moved during the check (head angles, eye closure, mouth, the face's place, ten times a second; "
    "no image, no template), kept to recognise a replay of this check",
}
NOT_HELD = (
    "the ID photo (only the face cut out from it is kept)",
    "video of the live check (the stream is analysed as it arrives and not recorded)",
    "the recorded fallback's clip (uploaded, analysed in memory, discarded)",
)


def describe(kind: str) -> str:
    return DESCRIPTIONS.get(re.sub(r"_\d+$", "", kind), "evidence")


def biometric_items(inventory: list[dict[str, Any]], images: dict[str, bytes] | None) -> list[dict[str, Any]]:
    """The store's evidence inventory, described; with `images`, the face images' bytes as base64."""
    items = []
    for item in inventory:
        entry = {**item, "description": describe(item["kind"])}
        if images is not None and item["kind"] in images:
            entry["image_jpeg_base64"] = base64.b64encode(images[item["kind"]]).decode()
        items.append(entry)
    return items
