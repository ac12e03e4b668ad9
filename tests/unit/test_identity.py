"""Resident ID numbers, credit codes and mobile numbers (PRODUCT.md §8)."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customers.identity import (
    birth_date_from_id,
    gender_from_id,
    id_check_char,
    make_id_number,
    normalise_mobile,
    validate_credit_code,
    validate_id_number,
    validate_mobile,
)

VALID = "11010519491231002X"  # the GB 11643 specimen


def test_valid_id_numbers():
    assert validate_id_number(VALID) == []
    assert validate_id_number(VALID.lower()) == []
    assert validate_id_number(make_id_number("511902", dt.date(1990, 5, 17), 123)) == []


def test_make_id_number_computes_the_check_character():
    assert make_id_number("110105", dt.date(1949, 12, 31), 2) == VALID
    with pytest.raises(ValueError):
        make_id_number("5119", dt.date(1990, 1, 1), 1)


def test_wrong_checksum_is_reported_with_the_expected_character():
    errors = validate_id_number("110105194912310021")
    assert errors == ["ID number checksum fails: last character should be X, found 1"]


@pytest.mark.parametrize(
    ("id_number", "fragment"),
    [
        (None, "empty"),
        ("", "empty"),
        ("51190219900101123", "18 characters, found 17"),
        ("5119021990010112345", "18 characters, found 19"),
        ("51190219900101123A", "17 digits followed by a digit or X"),
        ("5119021990010112X4", "17 digits followed by a digit or X"),
    ],
)
def test_malformed_id_numbers(id_number, fragment):
    errors = validate_id_number(id_number)
    assert len(errors) == 1 and fragment in errors[0]


def test_impossible_and_future_birth_dates():
    first17 = "51190219900230123"  # 30 February
    errors = validate_id_number(first17 + id_check_char(first17))
    assert errors == ["ID number has an impossible birth date 1990-02-30"]
    future = make_id_number("511902", dt.date(2030, 1, 1), 1)
    assert "out of range" in validate_id_number(future, today=dt.date(2026, 1, 1))[0]


def test_unknown_region_is_refused():
    assert "region" in validate_id_number(make_id_number("001234", dt.date(1990, 1, 1), 1))[0]


def test_birth_date_must_agree():
    id_number = make_id_number("511902", dt.date(1990, 5, 17), 123)
    assert validate_id_number(id_number, dt.date(1990, 5, 17)) == []
    assert validate_id_number(id_number, "1990-05-17") == []
    errors = validate_id_number(id_number, dt.date(1990, 5, 18))
    assert errors == ["ID number birth date 1990-05-17 does not match birth date 1990-05-18"]
    assert len(validate_id_number(id_number, "17/05/1990")) == 1


def test_gender_and_birth_date_from_id():
    assert gender_from_id(make_id_number("511902", dt.date(1990, 5, 17), 123)) == "M"
    assert gender_from_id(make_id_number("511902", dt.date(1990, 5, 17), 124)) == "F"
    assert gender_from_id("123") is None
    assert birth_date_from_id(VALID) == dt.date(1949, 12, 31)
    assert birth_date_from_id("not an id") is None


@settings(database=None)
@given(
    birth=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31)),
    seq=st.integers(min_value=0, max_value=999),
)
def test_made_id_numbers_are_valid_and_carry_birth_date_and_gender(birth, seq):
    id_number = make_id_number("511902", birth, seq)
    assert validate_id_number(id_number, birth) == []
    assert birth_date_from_id(id_number) == birth
    assert gender_from_id(id_number) == ("M" if seq % 2 else "F")
    tampered = id_number[:-1] + ("0" if id_number[-1] != "0" else "1")
    assert any("checksum" in error for error in validate_id_number(tampered))


@pytest.mark.parametrize(
    "phone", ["13812345678", "19912345678", "138 1234 5678", "138-1234-5678", "+8613812345678"]
)
def test_valid_mobiles(phone):
    assert validate_mobile(phone) == []


@pytest.mark.parametrize(
    "phone", [None, "", "1381234567", "138123456789", "12812345678", "02812345678", "1381234567a"]
)
def test_invalid_mobiles(phone):
    assert len(validate_mobile(phone)) == 1


def test_normalise_mobile():
    assert normalise_mobile("+86 138-1234-5678") == "13812345678"
    assert normalise_mobile("008613812345678") == "13812345678"


def test_credit_codes():
    assert validate_credit_code("91350100M000100Y43") == []
    assert validate_credit_code("91110000600037341L") == []
    assert "checksum" in validate_credit_code("91350100M000100Y44")[0]
    assert "letters" in validate_credit_code("91350100M000100I43")[0]
    assert "18 characters" in validate_credit_code("9135")[0]
