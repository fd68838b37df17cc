"""`python -m server eval-documents`: generate photographed documents with known contents, read them, and
report field accuracy and check pass rates per document kind.

Every fifth round of the four kinds (starting with the second) has a wrong check character or digit on
each kind that has one (the resident card's number, the MRZ's document number): the reader must catch
those. Field accuracy counts exact values after reading; a
field the reader did not return counts as wrong.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from server.config import ConfigError
from server.console import fail, print_json
from server.documents.reader import DocumentReader
from server.errors import RealnameError

from .id_documents import KINDS, make_document

BAD_ROUNDS = 5
CHECKED_KINDS = ("cn_resident_card_front", "td3_mrz", "td1_mrz")  # the kinds with check characters to spoil


@dataclass
class KindTally:
    documents: int = 0
    classified: int = 0
    fields: int = 0
    fields_right: int = 0
    all_fields_right: int = 0
    valid: int = 0
    valid_passed: int = 0
    invalid: int = 0
    invalid_caught: int = 0
    seconds: list[float] = field(default_factory=list)
    wrong: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def to_dict(self) -> dict:
        def rate(a: int, b: int) -> float | None:
            return round(a / b, 4) if b else None

        return {
            "documents": self.documents,
            "classified": rate(self.classified, self.documents),
            "field_accuracy": rate(self.fields_right, self.fields),
            "documents_all_fields_right": rate(self.all_fields_right, self.documents),
            "checks_passed_on_valid": rate(self.valid_passed, self.valid),
            "bad_checksums_caught": rate(self.invalid_caught, self.invalid),
            "bad_checksum_documents": self.invalid,
            "seconds_per_image_median": round(float(np.median(self.seconds)), 2) if self.seconds else None,
            "wrong_fields": dict(self.wrong),
        }


def evaluate(count: int, seed: int, reader: DocumentReader, portrait: np.ndarray | None = None, today: dt.date | None = None,
             out: Path | None = None, progress=None) -> dict:
    today = today or dt.date.today()
    tallies = {kind: KindTally() for kind in KINDS}
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        bad = kind in CHECKED_KINDS and (index // len(KINDS)) % BAD_ROUNDS == 1
        document = make_document(kind, seed + index, portrait, today, bad_checksum=bad)
        if out is not None:
            import cv2

            out.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / f"{index:04d}-{kind}{'-bad' if bad else ''}.jpg"), document.image)
        tally = tallies[kind]
        tally.documents += 1
        started = time.perf_counter()
        reading = reader.read_image(document.image, today)
        values = {name: f.value for name, f in reading.fields.items()}
        kind_read, passed, failed = reading.type, reading.checks_passed, bool(reading.checks_failed)
        tally.seconds.append(time.perf_counter() - started)
        tally.classified += kind_read == kind
        right = [name for name, value in document.truth.items() if values.get(name) == value]
        tally.fields += len(document.truth)
        tally.fields_right += len(right)
        tally.all_fields_right += len(right) == len(document.truth)
        for name in document.truth.keys() - set(right):
            tally.wrong[name] += 1
        if document.valid:
            tally.valid += 1
            tally.valid_passed += passed
        else:
            tally.invalid += 1
            tally.invalid_caught += failed
        if progress:
            progress(index + 1, count)
    total = KindTally()
    for tally in tallies.values():
        for name in ("documents", "classified", "fields", "fields_right", "all_fields_right", "valid", "valid_passed", "invalid", "invalid_caught"):
            setattr(total, name, getattr(total, name) + getattr(tally, name))
        total.seconds += tally.seconds
        for name, n in tally.wrong.items():
            total.wrong[name] += n
    return {"count": count, "seed": seed, "kinds": {kind: t.to_dict() for kind, t in tallies.items() if t.documents}, "all": total.to_dict()}


def _portrait(path: str | None) -> np.ndarray | None:
    if not path:
        return None
    from server.matching.images import decode_image

    return decode_image(Path(path).read_bytes(), max_bytes=1 << 30, max_pixels=200_000_000)


def run(args: argparse.Namespace) -> int:
    try:
        portrait = _portrait(args.photo)
        reader = DocumentReader(args.models_dir or "")
        reader.engine()
    except (OSError, ConfigError, RealnameError) as error:
        return fail("configuration", str(error), args.json)
    report = evaluate(args.count, args.seed, reader, portrait, out=Path(args.out) if args.out else None,
                      progress=lambda done, total: print(f"\r{done}/{total}", end="", file=sys.stderr, flush=True))
    print(file=sys.stderr)
    if args.json:
        print_json(report)
        return 0
    for kind, row in [*report["kinds"].items(), ("all", report["all"])]:
        print(f"{kind}: {row['documents']} documents, classified {row['classified']:.1%}, field accuracy {row['field_accuracy']:.1%}, "
              f"all fields right {row['documents_all_fields_right']:.1%}, checks passed on valid {row['checks_passed_on_valid']:.1%}, "
              f"bad checksums caught {row['bad_checksums_caught'] if row['bad_checksums_caught'] is None else format(row['bad_checksums_caught'], '.0%')} "
              f"of {row['bad_checksum_documents']}, {row['seconds_per_image_median']} s per image (median)")
        if row["wrong_fields"]:
            print(f"  wrong or missing: {row['wrong_fields']}")
    return 0


def add_parser(sub) -> None:
    evald = sub.add_parser("eval-documents", help="read generated ID documents and measure field accuracy and checks")
    evald.add_argument("--count", type=int, default=120, help="documents to generate (kinds in turn)")
    evald.add_argument("--seed", type=int, default=0)
    evald.add_argument("--photo", help="a face photo to print on the documents (default: none)")
    evald.add_argument("--out", help="also write the generated photos to this folder")
    evald.add_argument("--models-dir", dest="models_dir", help="folder `models install` put the OCR models in")
    evald.add_argument("--json", action="store_true")
    evald.set_defaults(func=run)
