"""The capacity model gives bit-identical results to the golden record (tests/capacity/golden.py).

The record was written by the engine before it was made faster; every case is recomputed and its
encoding (every result field, floats by ``repr``, long arrays by the sha256 of their bytes)
compared exactly.  The cases in :data:`SLOW` (the overcommitted 100-host day) are ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.capacity.golden import CASES, SLOW, differences, encode, record

_RECORD = record()


def test_the_record_covers_every_case() -> None:
    assert sorted(_RECORD) == sorted(CASES)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES])
def test_bit_identical_to_the_record(name: str) -> None:
    found = differences(_RECORD[name], encode(CASES[name]()))
    assert not found, f"{name} differs from the golden record:\n" + "\n".join(found[:20])


def test_the_encoding_sees_one_bit() -> None:
    one = np.ones(1000)
    flipped = one.copy()
    flipped[500] = np.nextafter(1.0, 2.0)
    assert differences(encode(one), encode(flipped))
    assert differences(encode(np.zeros(3)), encode(-np.zeros(3)))  # inline values, by repr
    assert differences(encode({"x": 0.0}), encode({"x": -0.0}))
    assert not differences(encode([float("nan"), 1.0]), encode([float("nan"), 1.0]))
    assert differences(encode(1), encode(1.0))  # an int is not a float
