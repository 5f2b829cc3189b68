"""Lambda event filtering (an event source mapping's `FilterCriteria`), as the emulated event sources
apply it: a record reaches the function when it matches any of the filters' patterns (they are ORed).

A pattern has the record's shape: a mapping key descends into the record's field of that name; a list
holds the values the field may match (ORed), each an exact value (string, number, boolean or null)
or one of the operators `prefix`, `suffix`, `equals-ignore-case`, `anything-but` (a value, a list of
values, or `{"prefix"|"suffix": ...}`), `exists` (true/false) and `numeric` (`["<", 5]`,
`[">=", 0, "<", 10]`, `["=", 3]`). A field holding a JSON array matches when any of its elements
does. Every field a pattern names must match (they are ANDed).

Not emulated: `$or`, `wildcard`, `cidr`. An unknown operator raises ValueError, as Lambda refuses
such a filter when the mapping is created. `numeric` compares JSON numbers only: DynamoDB's `N`
values are strings in a stream record, so filter them with exact values or `prefix`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import Any

_MISSING = object()  # a field the record does not have (unlike a field holding null)

_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def validate(pattern: dict) -> dict:
    """Raise ValueError for what `matches` would refuse, before any record arrives (Lambda checks a
    mapping's filters when it is created); returns the pattern."""
    if not isinstance(pattern, dict):
        raise ValueError(f"a filter pattern must be a JSON object, not {pattern!r}")
    for key, rule in pattern.items():
        if key.startswith("$"):
            raise ValueError(f"filter pattern key {key!r} is not supported here")
        if isinstance(rule, dict):
            validate(rule)
        elif isinstance(rule, list):
            for item in rule:
                if isinstance(item, dict) and "exists" in item:
                    _exists(None, item)
                elif isinstance(item, dict):
                    _value_matches("", item)  # each operator checks its argument
        else:
            raise ValueError(f"filter pattern values must be lists or objects: {key!r} is {rule!r}")
    return pattern


def matches_any(record: dict, patterns: Iterable[dict]) -> bool:
    """True when there are no patterns (no filtering) or the record matches at least one."""
    patterns = list(patterns)
    return not patterns or any(matches(record, p) for p in patterns)


def matches(value: Any, pattern: dict) -> bool:
    """Does `value` (a record, or a field of it) match this pattern?"""
    if not isinstance(pattern, dict):
        raise ValueError(f"a filter pattern must be a JSON object, not {pattern!r}")
    for key, rule in pattern.items():
        if key.startswith("$"):
            raise ValueError(f"filter pattern key {key!r} is not supported here")
        field = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if isinstance(rule, dict):
            # A nested pattern: an absent parent still lets `exists: false` below it match.
            if not matches(field, rule):
                return False
        elif isinstance(rule, list):
            if not _field_matches(field, rule):
                return False
        else:
            raise ValueError(f"filter pattern values must be lists or objects: {key!r} is {rule!r}")
    return True


def _field_matches(field: Any, rules: list) -> bool:
    # An array in the record matches when any of its elements does (exists looks at the field itself).
    candidates = field if isinstance(field, list) else [field]
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if _exists(field, rule):
                return True
        elif any(_value_matches(c, rule) for c in candidates):
            return True
    return False


def _exists(field: Any, rule: dict) -> bool:
    if not isinstance(rule["exists"], bool) or len(rule) != 1:
        raise ValueError(f"exists takes true or false: {rule!r}")
    return (field is not _MISSING) == rule["exists"]


def _value_matches(value: Any, rule: Any) -> bool:  # noqa: PLR0911 - one return per operator
    if not isinstance(rule, dict):
        return value is not _MISSING and _equal(value, rule)
    if len(rule) != 1:
        raise ValueError(f"a filter operator takes one key: {rule!r}")
    ((name, argument),) = rule.items()
    if value is _MISSING:
        return False  # every operator but exists needs the field (anything-but included)
    if name == "prefix":
        return isinstance(value, str) and value.startswith(_string(name, argument))
    if name == "suffix":
        return isinstance(value, str) and value.endswith(_string(name, argument))
    if name == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == _string(name, argument).casefold()
    if name == "anything-but":
        return _anything_but(value, argument)
    if name == "numeric":
        return _numeric(value, argument)
    raise ValueError(f"filter operator {name!r} is not supported here")


def _anything_but(value: Any, argument: Any) -> bool:
    if isinstance(argument, dict):
        return not _value_matches(value, argument)  # {"anything-but": {"prefix": "x"}}
    excluded = argument if isinstance(argument, list) else [argument]
    return not any(_equal(value, e) for e in excluded)


def _numeric(value: Any, argument: Any) -> bool:
    if not isinstance(argument, list) or not argument or len(argument) % 2 or len(argument) > 4:
        raise ValueError(f"numeric takes one or two [operator, number] pairs: {argument!r}")
    pairs = list(zip(argument[::2], argument[1::2], strict=True))
    for op, bound in pairs:
        if op not in _NUMERIC or not _is_number(bound):
            raise ValueError(f"numeric: bad comparison {op!r} {bound!r}")
    return _is_number(value) and all(_NUMERIC[op](value, bound) for op, bound in pairs)


def _equal(value: Any, expected: Any) -> bool:
    # JSON semantics: true is not 1, and 1 equals 1.0.
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    if _is_number(value) and _is_number(expected):
        return value == expected
    return type(value) is type(expected) and value == expected


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(name: str, argument: Any) -> str:
    if not isinstance(argument, str):
        raise ValueError(f"{name} takes a string, not {argument!r}")
    return argument
