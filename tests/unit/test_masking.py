"""Masking of personal financial information (PRODUCT.md §4.5)."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customers.masking import (
    ID_MASK_RE,
    PHONE_MASK_RE,
    UNMASKED_ID_RE,
    UNMASKED_PHONE_RE,
    balance_band,
    mask_address,
    mask_id_number,
    mask_name,
    mask_phone,
)


def test_id_number_keeps_first_four_and_last_four():
    assert mask_id_number("511902199001011234") == "5119**********1234"
    assert mask_id_number(" 11010519491231002x ") == "1101**********002X"


def test_phone_keeps_first_three_and_last_four():
    assert mask_phone("13812345678") == "138****5678"


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张三", "张*"), ("张三明", "张*明"), ("欧阳娜娜", "欧**娜"), ("买买提·艾力", "买****力"), ("张", "*")],
)
def test_individual_names(name, masked):
    assert mask_name(name, "individual") == masked


@pytest.mark.parametrize("customer_type", ["business", "institution", "企业", "事业单位"])
def test_business_and_institution_names_are_not_personal(customer_type):
    assert mask_name("眉山市东坡区人民医院", customer_type) == "眉山市东坡区人民医院"


@pytest.mark.parametrize("customer_type", [None, "", "unknown"])
def test_unknown_customer_type_is_masked_as_an_individual(customer_type):
    assert mask_name("张三明", customer_type) == "张*明"


@pytest.mark.parametrize("mask", [mask_id_number, mask_phone, mask_name, mask_address])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_values_show_nothing(mask, value):
    assert mask(value) == ""


@pytest.mark.parametrize(
    ("mask", "value"),
    [
        (mask_id_number, "5119021990"),
        (mask_id_number, "12345678901234"),
        (mask_phone, "1381234567"),
        (mask_phone, "5678"),
    ],
)
def test_too_short_values_become_all_stars(mask, value):
    assert mask(value) == "*" * len(value)


@settings(database=None, max_examples=200)
@given(st.text(alphabet=st.characters(exclude_characters="*", exclude_categories=("Cs",)), min_size=1))
def test_no_mask_returns_a_personal_value_unchanged(value):
    stripped = value.strip()
    for masked in (mask_id_number(value), mask_phone(value), mask_name(value)):
        if stripped:
            assert masked != stripped.upper() and masked != stripped
            assert "*" in masked


def test_regexes_find_masked_values_and_leaks_in_rendered_output():
    html = f"<td>{mask_id_number('511902199001011234')}</td><td>{mask_phone('13812345678')}</td>"
    assert ID_MASK_RE.search(html)
    assert PHONE_MASK_RE.search(html)
    assert not UNMASKED_ID_RE.search(html)
    assert not UNMASKED_PHONE_RE.search(html)
    leaked = "<td>511902199001011234</td><td>13812345678</td>"
    assert UNMASKED_ID_RE.search(leaked) and UNMASKED_PHONE_RE.search(leaked)
    assert not ID_MASK_RE.search(leaked) and not PHONE_MASK_RE.search(leaked)


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("四川省眉山市东坡区苏祠路12号", "四川省眉山市东坡区****"),
        ("四川省成都市彭州市致和镇", "四川省成都市彭州市****"),
        ("四川省乐山市市中区嘉州大道", "四川省乐山市市中区****"),
        ("凉山彝族自治州西昌市胜利路", "凉山彝族自治州西昌市****"),
        ("四川省眉山市仁寿县文林镇幸福小区3栋", "四川省眉山市仁寿县****"),
        ("四川省甘孜藏族自治州道孚县鲜水镇", "四川省甘孜藏族自治州道孚县****"),
        ("眉山市苏祠路农贸市场", "眉山市****"),
        ("文林镇幸福小区3栋", "****"),
        ("12 Main Street", "****"),
    ],
)
def test_address_keeps_up_to_district_or_county(address, masked):
    assert mask_address(address) == masked


@pytest.mark.parametrize(
    ("amount", "band"),
    [
        (Decimal("0"), "0"),
        (Decimal("-5"), "0"),
        (Decimal("0.01"), "1万以下"),
        (Decimal("9999.99"), "1万以下"),
        (Decimal("10000"), "1万–5万"),
        (Decimal("123456.78"), "10万–50万"),
        (Decimal("500000"), "50万–100万"),
        (Decimal("4999999.99"), "100万–500万"),
        (Decimal("10000000"), "1000万以上"),
        (100000, "10万–50万"),
        ("20000.00", "1万–5万"),
    ],
)
def test_balance_band(amount, band):
    assert balance_band(amount) == band


def test_balance_band_in_english_and_for_non_amounts():
    assert balance_band(Decimal("123456.78"), lang="en") == "100k–500k"
    assert balance_band(Decimal("20000000"), lang="en") == "≥10M"
    assert balance_band(None) == ""
    assert balance_band("abc") == ""
    assert balance_band(123456.78) == ""  # money is never a float
