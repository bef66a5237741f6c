"""Typed decoding targets (``statserver.gob.targets``): what a field the sender left out
becomes, and which declarations are refused.

Go's encoder sends no field whose value is the zero value, so a target field the wire
lacks must come out as Go's zero of its annotation unless the declaration gives a default.
"""

import dataclasses
from typing import Any, NamedTuple

import pytest
from gobwire import fields, i, s, struct_type, value

from statserver.gob import GoTime, decode
from statserver.gob.targets import spec_for


@dataclasses.dataclass
class Inner:
    A: int


@dataclasses.dataclass
class NoDefaults:
    Flag: bool
    Count: int
    Ratio: float
    Phase: complex
    Name: str
    Raw: bytes
    When: GoTime
    Tags: list[str]
    Labels: dict[str, int]
    Nested: Inner
    Either: int | str
    Anything: Any


class NoDefaultsTuple(NamedTuple):
    Name: str
    Count: int
    Tags: list[int]


# A struct on the wire naming only "Name" (a string): every other field was zero in Go.
ONLY_NAME = struct_type(66, "T", [("Name", 6)]) + value(66, fields((0, s("rev"))))


def test_a_dataclass_field_the_wire_lacks_is_the_zero_of_its_annotation():
    got = decode(ONLY_NAME, NoDefaults)
    assert got == NoDefaults(
        Flag=False, Count=0, Ratio=0.0, Phase=0j, Name="rev", Raw=b"", When=GoTime(),
        Tags=[], Labels={}, Nested=None, Either=None, Anything=None,
    )  # fmt: skip
    assert type(got.Count) is int and type(got.Ratio) is float


def test_list_and_dict_zeros_are_fresh_for_every_value():
    first, second = decode(ONLY_NAME, NoDefaults), decode(ONLY_NAME, NoDefaults)
    first.Tags.append("x")
    first.Labels["k"] = 1
    assert second.Tags == [] and second.Labels == {}


def test_a_namedtuple_field_the_wire_lacks_is_the_zero_of_its_annotation():
    assert decode(ONLY_NAME, NoDefaultsTuple) == NoDefaultsTuple("rev", 0, [])


@dataclasses.dataclass
class WithDerived:
    Name: str = ""
    Seen: int = dataclasses.field(default_factory=lambda: 7)
    Length: int = dataclasses.field(init=False)

    def __post_init__(self):
        self.Length = len(self.Name)


def test_init_false_fields_are_left_to_the_class_and_factories_give_defaults():
    got = decode(ONLY_NAME, WithDerived)
    assert (got.Name, got.Seen, got.Length) == ("rev", 7, 3)
    # a wire field named like an init=False field is not one the target takes
    stream = struct_type(66, "T", [("Name", 6), ("Length", 2)])
    stream += value(66, fields((0, s("ab")), (1, i(9))))
    assert decode(stream, WithDerived).Length == 2


def test_an_unsupported_annotation_is_refused_by_name():
    with pytest.raises(TypeError, match="unsupported gob decoding target: set"):
        decode(ONLY_NAME, set[int])

    @dataclasses.dataclass
    class Bad:
        Name: str
        Seen: set

    with pytest.raises(TypeError, match="unsupported gob decoding target"):
        decode(ONLY_NAME, Bad)


def test_an_annotation_naming_nothing_is_refused():
    @dataclasses.dataclass
    class Dangling:
        Name: "NoSuchType"  # noqa: F821 - the point of the test

    with pytest.raises(TypeError, match="NoSuchType"):
        decode(ONLY_NAME, Dangling)


def test_specs_name_their_target():
    assert repr(spec_for(list[int])) == "<target list>"
    assert repr(spec_for(int | str)) == "<target int | str>"
    assert repr(spec_for(NoDefaultsTuple)) == "<target NoDefaultsTuple>"
