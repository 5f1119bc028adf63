"""Manifests are validated like settings, and the declarative mapping reads JSON exactly."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from connectors.manifest import BUILTIN_DIR, ManifestError, load_manifest, manifest_from_dict
from connectors.mapping import MappingSpecError, compile_mapping
from connectors.shape import ShapeError
from gateway.core.facts import Address, PersonName, Service

NHS = "9990000018"


def council():
    return tomllib.loads((BUILTIN_DIR / "council.toml").read_text())


@pytest.mark.parametrize("name", ["gp", "school", "council", "youth_justice"])
def test_every_built_in_manifest_is_valid(name):
    manifest = load_manifest(name)
    assert manifest.name == name
    assert manifest.authority


def with_change(path, value):
    tree = council()
    node = tree
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return tree


@pytest.mark.parametrize(("path", "value", "fragment"), [
    (("colour",), "blue", "colour: Extra inputs are not permitted"),
    (("kind",), "soap", "kind: Input should be"),
    (("rest", "lookup", "path"), "api/children", "rest.lookup.path"),
    (("rest", "lookup", "verb"), "POST", "rest.lookup.verb"),
    (("rest",), None, "needs a [rest] table"),
    (("records_shielding",), False, "records_shielding"),
    (("provides",), ["name", "name"], "twice"),
    (("mapping", "favourite_food"), "food", "mapping.favourite_food: not a fact"),
    (("mapping", "gender"), "sex", "mapping.gender: mapped but not in provides"),
    (("mapping", "address"), None, "mapping.address: provided but not mapped"),
    (("mapping", "shielded"), {"path": "a..b"}, "mapping.shielded.path"),
    (("mapping", "shielded"), {"path": "x", "const": True}, "exactly one of path, const"),
    (("mapping", "shielded"), {"path": "x", "map": {"Y": "yes"}}, "mapping.shielded.map.Y"),
    (("mapping", "shielded"), {"path": "x", "date_format": "%d"}, "only a date fact"),
    (("mapping", "shielded"), {"path": "x", "colour": 1}, "mapping.shielded: unknown key"),
    (("mapping", "services", "from"), None, "mapping.services.from"),
    (("mapping", "services", "kind"), None, "mapping.services: kind must be mapped"),
    (("mapping", "address", "floor"), "f", "mapping.address: unknown key 'floor'"),
])
def test_a_bad_manifest_is_one_line_naming_file_and_key(path, value, fragment):
    with pytest.raises(ManifestError) as info:
        manifest_from_dict(with_change(path, value), "leeds.toml")
    message = str(info.value)
    assert message.startswith("manifest leeds.toml: ")
    assert fragment in message
    assert "\n" not in message


def test_a_file_that_is_not_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(ManifestError, match=r"broken.toml: not valid TOML"):
        load_manifest(path)


def test_fhir_cannot_claim_facts_a_patient_does_not_hold():
    tree = tomllib.loads((BUILTIN_DIR / "gp.toml").read_text())
    tree["provides"] = ["name", "services"]
    with pytest.raises(ManifestError, match="cannot state services"):
        manifest_from_dict(tree, "gp.toml")


YJ_MAPPING = {
    "nhs_number": "nhs_no",
    "date_of_birth": {"path": "dob", "date_format": "%d/%m/%Y"},
    "shielded": {"path": "restricted", "map": {"Y": True, "N": False}},
    "name": {"from": "name", "given": {"parts": ["first", {"path": "middle", "split": True}]},
             "family": "last"},
    "address": {"lines": {"parts": ["line1", "line2"]}, "postcode": "pc"},
    "gender": {"const": "unknown"},
    "services": {"from": "orders", "kind": "programme", "name": "category",
                 "contact": {"parts": ["tel", "ext"], "join": " ext. "},
                 "sensitive": {"path": "s", "map": {"Y": True, "N": False}},
                 "consent_recorded": {"path": "c", "map": {"Y": True, "N": False}}},
}
MAPPER = compile_mapping(YJ_MAPPING, frozenset(YJ_MAPPING) - {"nhs_number"},
                         explicit=frozenset({"shielded"}), label="youngPeople[]")
RECORD = {"nhs_no": NHS, "dob": "14/03/2012", "restricted": "N",
          "name": {"first": "Amy", "middle": "Jane  Rose", "last": "Hill"},
          "line1": "1 Elm Road", "line2": None, "pc": "LS6 2AB",
          "orders": [{"programme": "Referral order", "category": "YJS", "tel": "0113 496 0000",
                      "ext": "12", "s": "N", "c": "Y"}]}


def test_the_mapping_reads_paths_parts_splits_maps_formats_and_joins():
    facts = MAPPER.facts(RECORD)
    assert facts.name == PersonName(("Amy", "Jane", "Rose"), "Hill")
    assert facts.date_of_birth == dt.date(2012, 3, 14)
    assert facts.shielded is False
    assert facts.gender == "unknown"
    assert facts.address == Address(("1 Elm Road",), "LS6 2AB")
    assert facts.services == (
        Service("Referral order", "YJS", False, True, "0113 496 0000 ext. 12"),)


@pytest.mark.parametrize(("change", "where"), [
    ({"restricted": None}, "youngPeople[].restricted: required, but absent"),
    ({"restricted": "maybe"}, "youngPeople[].restricted: expected one of N, Y"),
    ({"restricted": True}, "youngPeople[].restricted: expected one of N, Y"),
    ({"dob": "2012-03-14"}, "youngPeople[].dob: expected a date, %d/%m/%Y"),
    ({"nhs_no": "1234567890"}, "youngPeople[].nhs_no: expected a valid NHS number"),
    ({"name": {"first": "Amy"}}, "youngPeople[].name.last: required, but absent"),
    ({"name": "Amy Hill"}, "youngPeople[].name: expected an object"),
    ({"orders": {"programme": "x"}}, "youngPeople[].orders: expected an array"),
    ({"orders": [{"programme": "x", "category": "y", "s": "N"}]},
     "youngPeople[].orders[].c: required, but absent"),
    ({"orders": [{"programme": 7, "category": "y", "s": "N", "c": "N"}]},
     "youngPeople[].orders[].programme: expected a non-empty string"),
    ({"orders": [5]}, "youngPeople[].orders[].programme: expected an object"),
    ({"name": {"first": 7, "last": "Hill"}},
     "youngPeople[].name.first: expected an array of strings"),
    ({"name": {"first": ["Amy", 3], "last": "Hill"}},
     "youngPeople[].name.first[]: expected a non-empty string"),
    ({"name": {"first": "Amy", "middle": 5, "last": "Hill"}},
     "youngPeople[].name.middle: expected a non-empty string"),
])
def test_a_malformed_record_names_the_path_never_the_value(change, where):
    with pytest.raises(ShapeError) as info:
        MAPPER.facts({**RECORD, **change})
    assert str(info.value) == where
    for value in change.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in str(info.value)


NESTED = compile_mapping({"nhs_number": "nhs_no", "gender": {"path": "who.sex", "required": True},
                          "name": {"given": {"parts": ["first", "middle"]}, "family": "last"}},
                         frozenset({"gender", "name"}), label="r[]")


@pytest.mark.parametrize(("who", "where"), [
    ({"sex": ""}, "r[].who.sex: required, but absent"),
    ({}, "r[].who.sex: required, but absent"),
    (None, "r[].who.sex: required, but absent"),
    ({"sex": "robot"}, "r[].who.sex: expected male, female, other or unknown"),
    ("male", "r[].who.sex: expected an object"),
])
def test_a_required_value_down_a_path_is_named_by_its_whole_path(who, where):
    with pytest.raises(ShapeError) as info:
        NESTED.facts({"nhs_no": NHS, "who": who})
    assert str(info.value) == where


def test_parts_drop_blank_strings_and_keep_each_parts_lines_in_order():
    facts = NESTED.facts({"nhs_no": NHS, "who": {"sex": "female"}, "first": ["Amy", "", None],
                          "middle": "  ", "last": "Hill"})
    assert facts.name == PersonName(("Amy",), "Hill")
    facts = NESTED.facts({"nhs_no": NHS, "who": {"sex": "female"}, "first": "Amy",
                          "middle": ["Jane", "Rose"], "last": "Hill"})
    assert facts.name == PersonName(("Amy", "Jane", "Rose"), "Hill")


def test_absent_optional_values_are_not_stated():
    facts = MAPPER.facts({"nhs_no": NHS, "restricted": "Y", "dob": "01/02/2013"})
    assert (facts.name, facts.address, facts.services) == (None, None, None)
    assert facts.shielded is True


def test_a_constant_must_fit_its_fact():
    with pytest.raises(MappingSpecError, match=r"mapping.gender.const"):
        compile_mapping({"nhs_number": "n", "gender": {"const": "robot"}}, frozenset({"gender"}))
