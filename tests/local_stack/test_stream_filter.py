"""The FilterCriteria matcher of the emulated event source mappings (devkit/event_filter.py)."""

from __future__ import annotations

import pytest

from devkit.event_filter import matches, matches_any, validate

RECORD = {
    "eventName": "INSERT",
    "dynamodb": {
        "Keys": {"pk": {"S": "JOB#1"}, "sk": {"S": "IMG#00001"}},
        "NewImage": {"status": {"S": "succeeded"}, "width": {"N": "640"}, "tags": {"SS": ["a", "b"]}},
        "SizeBytes": 120,
    },
    "flag": True,
    "nothing": None,
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"eventName": ["INSERT"]}, True),
        ({"eventName": ["MODIFY", "INSERT"]}, True),  # values of a list are ORed
        ({"eventName": ["MODIFY"]}, False),
        ({"eventName": ["insert"]}, False),
        ({"eventName": [{"equals-ignore-case": "insert"}]}, True),
        ({"dynamodb": {"Keys": {"sk": {"S": [{"prefix": "IMG#"}]}}}}, True),
        ({"dynamodb": {"Keys": {"sk": {"S": [{"prefix": "JOB"}]}}}}, False),
        ({"dynamodb": {"Keys": {"sk": {"S": [{"suffix": "00001"}]}}}}, True),
        ({"eventName": [{"anything-but": "REMOVE"}]}, True),
        ({"eventName": [{"anything-but": ["INSERT", "MODIFY"]}]}, False),
        ({"dynamodb": {"Keys": {"sk": {"S": [{"anything-but": {"prefix": "IMG#"}}]}}}}, False),
        ({"missing": [{"anything-but": "x"}]}, False),  # anything-but needs the field
        ({"dynamodb": {"NewImage": {"status": [{"exists": True}]}}}, True),
        ({"dynamodb": {"OldImage": {"status": [{"exists": True}]}}}, False),
        ({"dynamodb": {"OldImage": {"status": [{"exists": False}]}}}, True),  # absent parent: absent
        ({"dynamodb": {"NewImage": {"status": [{"exists": False}]}}}, False),
        ({"dynamodb": {"SizeBytes": [{"numeric": [">", 100, "<=", 120]}]}}, True),
        ({"dynamodb": {"SizeBytes": [{"numeric": ["=", 120.0]}]}}, True),
        ({"dynamodb": {"SizeBytes": [{"numeric": ["<", 100]}]}}, False),
        ({"dynamodb": {"NewImage": {"width": {"N": [{"numeric": [">", 1]}]}}}}, False),  # N is a string
        ({"dynamodb": {"NewImage": {"width": {"N": ["640"]}}}}, True),
        ({"dynamodb": {"NewImage": {"tags": {"SS": ["b"]}}}}, True),  # any element of an array
        ({"dynamodb": {"SizeBytes": ["120"]}}, False),  # a string is not the number
        ({"flag": [True]}, True),
        ({"flag": [1]}, False),  # true is not 1
        ({"nothing": [None]}, True),
        ({"missing": [None]}, False),  # null matches a null field, not an absent one
        ({"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "JOB"}]}}}}, False),  # ANDed
    ],
)
def test_pattern(pattern, expected):
    assert validate(pattern) is pattern
    assert matches(RECORD, pattern) is expected


def test_filters_are_ored_and_none_means_everything():
    assert matches_any(RECORD, [])
    assert matches_any(RECORD, [{"eventName": ["REMOVE"]}, {"eventName": ["INSERT"]}])
    assert not matches_any(RECORD, [{"eventName": ["REMOVE"]}, {"eventName": ["MODIFY"]}])


@pytest.mark.parametrize(
    "pattern",
    [
        {"eventName": "INSERT"},  # a bare value instead of a list
        {"eventName": [{"wildcard": "IN*"}]},
        {"$or": [{"eventName": ["INSERT"]}]},
        {"eventName": [{"exists": "yes"}]},
        {"eventName": [{"prefix": 3}]},
        {"n": [{"numeric": [">"]}]},
        {"n": [{"numeric": ["~", 3]}]},
        {"eventName": [{"prefix": "a", "suffix": "b"}]},
        ["not", "an", "object"],
    ],
)
def test_invalid_patterns_are_refused_up_front(pattern):
    with pytest.raises(ValueError):
        validate(pattern)
