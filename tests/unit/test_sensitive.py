"""PII-02: passwords, codes, card and ID numbers are found in free text (and nothing else is)."""

from __future__ import annotations

import pytest

from org.sensitive import findings, problem


@pytest.mark.parametrize(
    "text,kind",
    [
        ("客户说密码是123456，下次再来", "password"),
        ("验证码：8823", "password"),
        ("his PIN 1234", "password"),
        ("卡号 4111 1111 1111 1111 已激活", "bank card"),
        ("账户6217000010001234", "bank card"),
        ("身份证 11010519491231002X", "resident ID"),
    ],
)
def test_found(text, kind):
    assert any(kind in f for f in findings(text)), findings(text)


@pytest.mark.parametrize(
    "text",
    [
        "开了1年定期 50000元，周五到网点",
        "电话 13800138000 晚上打",
        "定期存单 No. 0012345",
        "卡号 4111 1111 1111 1112",  # fails the Luhn check
        "110105194912310021",  # an ID-shaped number with a wrong check digit
        "",
        None,
    ],
)
def test_not_found(text):
    assert findings(text) == []


def test_the_message_names_the_field_never_the_number():
    msg = problem("卡号 4111 1111 1111 1111")
    assert msg.startswith("this text seems to contain a bank card number") and "4111" not in msg
    assert problem("账户 4111111111111111", cards=False) is None  # evidence may cite an account
    assert problem("验证码 8823", cards=False) is not None
