"""How many people's face data is stored now, per merchant and in total, against the filing threshold of
China's face-recognition measures (2025): a processor storing the face information of 100,000 people or
more files with the provincial cyberspace office within 30 working days (docs/compliance.md). The count is
of sessions holding face data (crops or templates): one session is one person's check, so a person who
checked twice counts twice, which errs on the side of filing. Pure."""

from __future__ import annotations

from dataclasses import dataclass

FILING_WARNING = "face_data_filing_threshold"


@dataclass(frozen=True)
class FaceDataCensus:
    per_merchant: dict[int, int]  # merchant id -> people whose face data is stored
    threshold: int

    @property
    def total(self) -> int:
        return sum(self.per_merchant.values())

    @property
    def over_threshold(self) -> bool:
        return self.total >= self.threshold

    def of(self, merchant_id: int) -> int:
        return self.per_merchant.get(merchant_id, 0)

    def merchant_over_threshold(self, merchant_id: int) -> bool:
        return self.of(merchant_id) >= self.threshold

    def health(self) -> dict[str, object]:
        """The totals only: the health status is not the place to show each merchant's volume."""
        return {"individuals": self.total, "filing_threshold": self.threshold, "filing_required": self.over_threshold}
