"""The Simplified Chinese catalogue: pages render in Chinese by default and by choice, in English
when English is chosen, and every message of the catalogue is translated with its placeholders."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.factories import login, make_campaign

TRANSLATIONS = Path(__file__).resolve().parents[2] / "web" / "translations"
PO = TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po"
MO = TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.mo"
PLACEHOLDER = re.compile(r"%\([A-Za-z_][A-Za-z0-9_]*\)[sd]|%%|%[sd]|\{[0-9A-Za-z_]*\}")


@pytest.fixture
def zh_app(settings):  # noqa: ANN001, ANN201
    """The app as deployed: no language chosen anywhere falls back to zh_CN."""
    from config.database import db
    from web import create_app

    app = create_app(
        {"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False},
        settings=dataclasses.replace(settings, default_locale="zh_CN"),
    )
    with app.app_context():
        yield app
    db.session.remove()


def _text(response) -> str:  # noqa: ANN001
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


# --- pages ---------------------------------------------------------------------------------


def test_login_page_is_chinese_by_default(zh_app) -> None:  # noqa: ANN001
    page = _text(zh_app.test_client().get("/login"))
    assert '<html lang="zh-CN">' in page
    assert "登录" in page and "密码" in page
    assert "Sign in" not in page and "Password" not in page


def test_login_page_follows_the_browser(client) -> None:  # noqa: ANN001
    zh = _text(client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}))
    assert "登录" in zh and "密码" in zh and "Sign in" not in zh
    en = _text(client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert "Sign in" in en and "Password" in en and "登录" not in en


def test_language_switch_before_signing_in(client) -> None:  # noqa: ANN001
    client.post("/lang", data={"code": "zh_CN"})
    assert "登录" in _text(client.get("/login"))
    client.post("/lang", data={"code": "en"})
    page = _text(client.get("/login"))
    assert "Sign in" in page and "登录" not in page


def test_campaign_list_in_chinese_and_in_english(client, session, union) -> None:  # noqa: ANN001
    make_campaign(session, union.director, [union.b1], name="存款旺季营销")
    session.commit()
    login(client, union.director)

    client.post("/lang", data={"code": "zh_CN"})
    zh = _text(client.get("/campaigns/"))
    assert '<html lang="zh-CN">' in zh
    for word in ("营销活动", "编号", "状态", "草稿", "进行中", "退出登录", "存款旺季营销"):
        assert word in zh, word
    for word in (">Campaigns<", "Sign out", ">draft"):
        assert word not in zh, word

    client.post("/lang", data={"code": "en"})
    en = _text(client.get("/campaigns/"))
    assert '<html lang="en">' in en
    for word in ("Campaigns", "Sign out", "draft"):
        assert word in en, word
    assert "退出登录" not in en


def test_campaign_list_default_is_chinese_for_a_user_without_a_choice(zh_app, session, union) -> None:  # noqa: ANN001
    assert union.director.locale is None
    client = zh_app.test_client()
    login(client, union.director)
    page = _text(client.get("/campaigns/"))
    assert '<html lang="zh-CN">' in page
    assert "营销活动" in page and ">Campaigns<" not in page


# --- catalogue -----------------------------------------------------------------------------


def _catalogue():  # noqa: ANN202
    with PO.open("rb") as fh:
        return read_po(fh)


def _messages(catalogue):  # noqa: ANN001, ANN202
    return [m for m in catalogue if m.id]


def _ids(message) -> tuple[str, ...]:  # noqa: ANN001
    return tuple(message.id) if message.pluralizable else (message.id,)


def _strings(message) -> tuple[str, ...]:  # noqa: ANN001
    return tuple(message.string) if message.pluralizable else (message.string,)


def test_catalogue_is_simplified_chinese_with_one_plural_form() -> None:
    catalogue = _catalogue()
    assert catalogue.locale.language == "zh"
    assert catalogue.num_plurals == 1


def test_every_message_is_translated() -> None:
    untranslated = [m.id for m in _messages(_catalogue()) if not all(s and s.strip() for s in _strings(m))]
    assert untranslated == []


def test_no_message_is_fuzzy() -> None:
    assert [m.id for m in _messages(_catalogue()) if m.fuzzy] == []


def test_every_placeholder_survives_translation() -> None:
    wrong = []
    for m in _messages(_catalogue()):
        wanted = sorted(PLACEHOLDER.findall(_ids(m)[-1]))
        for s in _strings(m):
            if sorted(PLACEHOLDER.findall(s)) != wanted:
                wrong.append((m.id, s))
    assert wrong == []


def test_html_tags_survive_translation() -> None:
    tag = re.compile(r"</?[a-zA-Z][^>]*>")
    wrong = [
        (m.id, s)
        for m in _messages(_catalogue())
        for s in _strings(m)
        if sorted(tag.findall(_ids(m)[0])) != sorted(tag.findall(s))
    ]
    assert wrong == []


def test_translations_are_chinese() -> None:
    """Every translation holds Chinese, except names and codes kept as they are."""
    kept = {"VIP", "campaignflow"}
    han = re.compile(r"[\u4e00-\u9fff]")
    latin_only = [
        m.id
        for m in _messages(_catalogue())
        if m.id not in kept and not all(han.search(s) for s in _strings(m))
    ]
    assert latin_only == []


def test_compiled_catalogue_matches_the_po() -> None:
    with MO.open("rb") as fh:
        compiled = read_mo(fh)
    po = {_ids(m)[0]: _strings(m) for m in _messages(_catalogue())}
    mo = {
        (m.id[0] if isinstance(m.id, (tuple, list)) else m.id): tuple(m.string)
        if isinstance(m.string, (tuple, list))
        else (m.string,)
        for m in compiled
        if m.id
    }
    assert mo == po
