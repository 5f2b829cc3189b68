"""The Store Master: parsed with a real CSV reader (quoted commas, CRLF, BOM, no final newline)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from .models import Store

REQUIRED_COLUMNS = ("AreaCode", "StoreName", "StoreID")


class StoreMaster:
    def __init__(self, stores: Iterable[Store]) -> None:
        self._by_id = {s.store_id: s for s in stores}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, store_id: object) -> bool:
        return store_id in self._by_id

    def get(self, store_id: str) -> Store | None:
        return self._by_id.get(store_id)


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
