"""repos.constructor: the entities it builds are those the dataclass's own __init__ builds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from datetime import datetime

import pytest

from switchboard.domain import entities, repos


@pytest.mark.parametrize("entity", [entities.User, entities.Server, entities.Endpoint, entities.VoipTest])
def test_constructor_builds_what_init_builds(entity):
    values = [
        datetime(2020, 1, 2, 3, 4, 5, n) if "date" in f.name or f.name.endswith(("_at", "_since")) else n
        for n, f in enumerate(fields(entity))
    ]
    make = repos.constructor(entity)
    assert make is not entity
    built, want = make(*values), entity(*values)
    assert type(built) is entity and built == want and hash(built) == hash(want)
    assert dataclasses.astuple(built) == tuple(values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.id = 99
    with pytest.raises(TypeError):
        make(*values[:-1])


def test_constructor_leaves_other_classes_alone():
    @dataclass
    class Mutable:
        a: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self):
            if self.a < 0:
                raise ValueError

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    for cls in (Mutable, Checked, NoSlots, tuple):
        assert repos.constructor(cls) is cls
