"""The Store Master: parsed with a real CSV reader (quoted commas, CRLF, BOM, no final newline)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator

from retail_pulse.domain.models import Store

REQUIRED_COLUMNS = ("AreaCode", "StoreName", "StoreID")


class StoreMaster:
    def __init__(self, stores: Iterable[Store]) -> None:
        self._by_id = {s.store_id: s for s in stores}
        self._areas: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, store_id: object) -> bool:
        return store_id in self._by_id

    def get(self, store_id: str) -> Store | None:
        return self._by_id.get(store_id)

    def __iter__(self) -> Iterator[Store]:
        return iter(self._by_id.values())

    def areas(self) -> dict[str, int]:
        """AreaCode -> number of stores, for every non-empty AreaCode, in code order."""
        if self._areas is None:
            counts = Counter(s.area_code for s in self._by_id.values() if s.area_code)
            self._areas = dict(sorted(counts.items()))
        return dict(self._areas)


def parse_store_master(data: bytes | str) -> StoreMaster:
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.removeprefix("\ufeff")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"store master: missing columns {missing}")
    stores = []
    for row in reader:
        store_id = (row.get("StoreID") or "").strip()
        if store_id:
            stores.append(
                Store(
                    store_id=store_id,
                    name=(row.get("StoreName") or "").strip(),
                    area_code=(row.get("AreaCode") or "").strip(),
                )
            )
    return StoreMaster(stores)
