"""Store Master search, in memory: case-insensitive, forgiving of typos and partial names, ranked.

A name matches when at least one word of the query matches one of its words: exactly, as the
start of it ("pan" -> "PANWALA") or by spelling similarity ("paradis" -> "Paradise"). Ranking:
a store id equal to the query, then the whole name equal to it, starting with it, containing it,
then the share of query words matched (and how well), names starting with the first query word,
and fewer unmatched name words; ties by name and id.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from difflib import SequenceMatcher

from retail_pulse.domain.errors import InvalidRequest
from retail_pulse.domain.models import Store
from retail_pulse.domain.store_master import StoreMaster
from retail_pulse.logic.paging import parse_limit
from retail_pulse.logic.reports import require_area

DEFAULT_STORES = 20
MAX_STORES = 100
MAX_QUERY_CHARS = 200
SIMILAR = 0.75  # least spelling similarity (difflib ratio) for a word to count as matching
PREFIX_SCORE = 0.9
_WORD = re.compile(r"[0-9a-z]+")


@dataclass(frozen=True)
class _Entry:
    store: Store
    name: str  # normalised: lower-case words joined by one space
    words: tuple[str, ...]


class _Index:
    def __init__(self, master: StoreMaster) -> None:
        self.entries = [_Entry(s, " ".join(w), tuple(w)) for s in master for w in [words(s.name)]]
        self.vocabulary = sorted({w for e in self.entries for w in e.words})


_indexes: weakref.WeakKeyDictionary[StoreMaster, _Index] = weakref.WeakKeyDictionary()


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def search_stores(q: str | None, area: str | None, limit: int | str | None, *, stores: StoreMaster) -> dict:
    size = parse_limit(limit, default=DEFAULT_STORES, maximum=MAX_STORES)
    if area:
        area = require_area(area, stores)
    index = _indexes.get(stores)
    if index is None:
        index = _indexes[stores] = _Index(stores)
    candidates = [e for e in index.entries if not area or e.store.area_code == area]
    if not q:
        ranked = sorted(((0.0, e) for e in candidates), key=lambda se: (se[1].name, se[1].store.store_id))
    else:
        if len(q) > MAX_QUERY_CHARS:
            raise InvalidRequest(f"q: at most {MAX_QUERY_CHARS} characters")
        query_words = words(q)
        if not query_words:
            raise InvalidRequest("q: must contain letters or digits")
        similar = {w: _similar_words(w, index.vocabulary) for w in dict.fromkeys(query_words)}
        scored = []
        for entry in candidates:
            score = _score(q.strip().lower(), " ".join(query_words), query_words, similar, entry)
            if score > 0:
                scored.append((score, entry))
        ranked = sorted(scored, key=lambda se: (-se[0], se[1].name, se[1].store.store_id))
    return {
        "total": len(ranked),
        "results": [
            {
                "store_id": e.store.store_id,
                "store_name": e.store.name,
                "area": e.store.area_code,
                **({"score": round(score, 3)} if q else {}),
            }
            for score, e in ranked[:size]
        ],
    }


def _similar_words(word: str, vocabulary: list[str]) -> dict[str, float]:
    """Vocabulary words matching `word`, with how well (1 exact, PREFIX_SCORE prefix, else similarity)."""
    out: dict[str, float] = {}
    for v in vocabulary:
        if v == word:
            out[v] = 1.0
        elif len(word) >= 2 and v.startswith(word):
            out[v] = PREFIX_SCORE
        elif 2 * min(len(v), len(word)) / (len(v) + len(word)) >= SIMILAR:  # ratio's upper bound
            matcher = SequenceMatcher(None, word, v)
            if matcher.quick_ratio() >= SIMILAR and (ratio := matcher.ratio()) >= SIMILAR:
                out[v] = ratio * PREFIX_SCORE
    return out


def _score(raw: str, query: str, query_words: list[str], similar: dict[str, dict[str, float]], e: _Entry) -> float:
    if raw == e.store.store_id.lower():
        return 4.0
    best = [max((similar[w].get(n, 0.0) for n in e.words), default=0.0) for w in query_words]
    if not any(best):
        return 0.0
    score = sum(best) / len(best)
    if e.name == query:
        score += 1.0
    elif e.name.startswith(query):
        score += 0.5
    elif query in e.name:
        score += 0.3
    if e.words and similar[query_words[0]].get(e.words[0], 0.0) >= PREFIX_SCORE:
        score += 0.1  # the name starts like the query
    matched = sum(1 for n in e.words if any(similar[w].get(n) for w in query_words))
    return score - 0.01 * (len(e.words) - matched)
