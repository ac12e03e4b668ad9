"""Server-side masking of personal financial information (PRODUCT.md §4.5, 注意对客户隐私的保护).

Every function here is total: ``None``, empty and malformed input never raise and never
leak a full value. A value too short to show its prefix and suffix safely becomes all stars.
Templates and exports call these; unmasking is a separate, audited decision of the caller.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

MASK = "*"

#: A masked 18-character ID number as rendered: first 4, ten stars, last 4 (``5119**********1234``).
ID_MASK_RE = re.compile(r"(?<![0-9A-Za-z*])\d{4}\*{10}\d{3}[\dX](?![0-9A-Za-z*])")
#: A masked mobile number as rendered: first 3, four stars, last 4 (``138****5678``).
PHONE_MASK_RE = re.compile(r"(?<![0-9*])1\d{2}\*{4}\d{4}(?![0-9*])")
#: An unmasked 18-character ID number anywhere in a text (to assert that none leaks).
UNMASKED_ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
#: An unmasked mainland mobile number anywhere in a text (to assert that none leaks).
UNMASKED_PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")

_NON_PERSONAL_TYPES = frozenset({"business", "institution", "个体工商户", "企业", "事业单位"})


def _clean(value: object) -> str:
    return "" if value is None else str(value).strip()


def _keep_ends(value: str, head: int, tail: int, min_len: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters, star the rest; all stars if too short."""
    if not value:
        return ""
    if len(value) < min_len:
        return MASK * len(value)
    return value[:head] + MASK * (len(value) - head - tail) + value[len(value) - tail :]


def mask_id_number(id_number: str | None) -> str:
    """``511902199001011234`` → ``5119**********1234``; shorter than 15 characters → all stars."""
    return _keep_ends(_clean(id_number).upper(), 4, 4, 15)


def mask_phone(phone: str | None) -> str:
    """``13812345678`` → ``138****5678``; shorter than 11 characters → all stars."""
    return _keep_ends(_clean(phone), 3, 4, 11)


def mask_name(name: str | None, customer_type: str | None = "individual") -> str:
    """Mask an individual's name: ``张三`` → ``张*``, ``张三明`` → ``张*明``, ``欧阳娜娜`` → ``欧**娜``.

    Names of businesses and institutions are not personal information and stay as they are.
    An unknown ``customer_type`` is treated as an individual (mask rather than leak).
    """
    value = _clean(name)
    if _clean(customer_type) in _NON_PERSONAL_TYPES:
        return value
    if len(value) <= 1:
        return MASK * len(value)
    if len(value) == 2:
        return value[0] + MASK
    return _keep_ends(value, 1, 1, 3)


# One administrative unit: a short name and its suffix. Longer suffixes first so that
# 凉山彝族自治州 is one unit, not 凉山彝族自治 + 州.
_ADMIN_UNIT_RE = re.compile(r".{1,12}?(?:特别行政区|自治区|自治州|自治县|自治旗|地区|省|盟|市|州|区|县|旗)")
# A unit containing one of these is below county level (a town, village, road, compound …).
_BELOW_COUNTY_RE = re.compile(r"镇|乡|街道|村|社区|小区|路|街|巷|号|组|栋|幢|单元|室|弄|楼|\d")
_COUNTY_SUFFIXES = ("自治县", "自治旗", "区", "县", "旗")
_PREFECTURE_SUFFIXES = ("自治州", "地区", "盟", "市", "州")


def mask_address(address: str | None) -> str:
    """Keep an address up to district/county level, then ``****``.

    ``四川省眉山市东坡区苏祠路12号`` → ``四川省眉山市东坡区****``;
    ``四川省成都市彭州市致和镇`` → ``四川省成都市彭州市****`` (a county-level city).
    An address whose administrative prefix cannot be recognised becomes ``****``.
    """
    value = _clean(address)
    if not value:
        return ""
    kept_end = 0
    previous = ""
    for _ in range(4):
        match = _ADMIN_UNIT_RE.match(value, kept_end)
        if match is None or _BELOW_COUNTY_RE.search(match.group()):
            break
        unit, kept_end = match.group(), match.end()
        if unit.endswith("州") and value.startswith("市", kept_end):
            # 彭州市, 达州市: a 州 that is part of a city's name
            unit, kept_end = unit + "市", kept_end + 1
        county_level_city = unit.endswith("市") and previous.endswith(_PREFECTURE_SUFFIXES)
        if unit.endswith(_COUNTY_SUFFIXES) or county_level_city:
            break
        previous = unit
    return value[:kept_end] + MASK * 4


_BANDS_ZH = ("1万以下", "1万–5万", "5万–10万", "10万–50万", "50万–100万", "100万–500万", "500万–1000万")
_BANDS_EN = ("<10k", "10k–50k", "50k–100k", "100k–500k", "500k–1M", "1M–5M", "5M–10M")
_BAND_LIMITS = tuple(Decimal(n) for n in (10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000, 10_000_000))


def balance_band(amount: Decimal | int | str | None, lang: str = "zh") -> str:
    """A balance shown as a band in lists: ``Decimal("123456.78")`` → ``10万–50万`` (``100k–500k``).

    Lower bounds are inclusive. Zero and negative amounts are ``0``; ``None`` or a value that is
    not a number is ``""`` (nothing to show).
    """
    if amount is None or isinstance(amount, float | bool):
        # floats are refused: money is Decimal everywhere (STYLE.md)
        return ""
    try:
        value = Decimal(str(amount).strip())
    except (InvalidOperation, ValueError):
        return ""
    if not value.is_finite():
        return ""
    if value <= 0:
        return "0"
    bands = _BANDS_EN if lang == "en" else _BANDS_ZH
    for limit, label in zip(_BAND_LIMITS, bands, strict=True):
        if value < limit:
            return label
    return "≥10M" if lang == "en" else "1000万以上"
