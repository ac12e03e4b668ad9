"""Campaign dashboard (JOURNEYS 1, 4): funnel, contact and response rates, attainment per branch
and per staff member, leaderboard, daily trend — charts, and every table as XLSX."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from flask import Blueprint, Flask, abort, render_template, send_file
from flask_babel import gettext as _

from campaigns import dashboard as queries
from campaigns import services
from config.database import db
from org.services import audit
from web import system_text
from web.auth import current_scope, current_staff_id, roles_required

bp = Blueprint("campaign_dashboard", __name__, url_prefix="/campaigns")

ROLES = ("director", "admin", "checker")
TABLES = ("funnel", "branches", "staff", "leaderboard", "trend", "reasons", "grids")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: Any) -> Any:
    """A cell value that a spreadsheet never reads as a formula (CSV/XLSX injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{(value * 100).quantize(Decimal('0.1'))} %"


def table_rows(dash: queries.Dashboard, name: str, measures: list[str]) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of one dashboard table, as shown and downloaded."""
    if name == "funnel":
        header = [_("Stage"), _("Customers")]
        rows = [
            [_("assigned"), dash.funnel["assigned"]],
            [_("contacted"), dash.funnel["contacted"]],
            [_("interested"), dash.funnel["interested"]],
            [_("converted"), dash.funnel["converted"]],
        ]
        rows += [
            [_("contact rate"), _pct(dash.contact_rate)],
            [_("customer response rate (客户反馈率)"), _pct(dash.response_rate)],
            [_("in branch pools"), dash.pool],
        ]
        return header, rows
    if name == "branches":
        header = [
            _("Branch"),
            _("Assigned"),
            _("Pool"),
            _("Contacted"),
            _("Converted"),
            _("Contact rate"),
            _("Response rate"),
        ]
        for m in measures:
            header += [f"{m} " + _("achieved"), f"{m} " + _("target"), f"{m} " + _("attainment")]
        rows = []
        for r in dash.by_branch:
            row = [
                r["branch"],
                r["assigned"],
                r["pool"],
                r["contacted"],
                r["converted"],
                _pct(r["contact_rate"]),
                _pct(r["response_rate"]),
            ]
            for m in measures:
                row += [
                    r[f"{m}:achieved"],
                    r[f"{m}:target"] if r[f"{m}:target"] is not None else "—",
                    _pct(r[f"{m}:attainment"]),
                ]
            rows.append(row)
        return header, rows
    if name == "staff":
        header = [
            _("Staff no."),
            _("Name"),
            _("Branch"),
            _("Assigned"),
            _("Contacted"),
            _("Interested"),
            _("Converted"),
            _("Contact rate"),
        ]
        for m in measures:
            header += [f"{m} " + _("achieved"), f"{m} " + _("target"), f"{m} " + _("attainment")]
        rows = []
        for r in dash.by_staff:
            row = [
                r["staff_no"],
                r["name"],
                r["branch"],
                r["assigned"],
                r["contacted"],
                r["interested"],
                r["converted"],
                _pct(r["contact_rate"]),
            ]
            for m in measures:
                row += [
                    r[f"{m}:achieved"],
                    r[f"{m}:target"] if r[f"{m}:target"] is not None else "—",
                    _pct(r[f"{m}:attainment"]),
                ]
            rows.append(row)
        return header, rows
    if name == "leaderboard":
        header = [
            _("Rank"),
            _("Staff no."),
            _("Name"),
            _("Branch"),
            _("Converted"),
            _("Contacted"),
            _("Assigned"),
        ]
        return header, [
            [r["rank"], r["staff_no"], r["name"], r["branch"], r["converted"], r["contacted"], r["assigned"]]
            for r in dash.leaderboard
        ]
    if name == "trend":
        header = [
            _("Day"),
            _("Contacted"),
            _("Interested"),
            _("Converted"),
            _("Claimed from pool"),
            _("Other changes"),
        ]
        return header, [
            [r["day"], r["contacted"], r["interested"], r["converted"], r["claimed"], r["other"]]
            for r in dash.trend
        ]
    if name == "reasons":
        header = [_("Why (reason)"), _("Assignments"), _("Still open")]
        return header, [[system_text.translate(r["reason"]), r["assignments"], r["open"]] for r in dash.reasons]
    if name == "grids":
        header = [
            _("Grid"),
            _("Customers"),
            _("Visits done"),
            _("Contacted"),
            _("Contact rate"),
            _("Converted"),
            _("Prospects made"),
        ]
        return header, [
            [
                r["grid"],
                r["customers"],
                r["visits"],
                r["contacted"],
                _pct(r["contact_rate"]),
                r["converted"],
                r["prospects"],
            ]
            for r in dash.grids
        ]
    raise KeyError(name)


def _charts(dash: queries.Dashboard, measures: list[str]) -> dict[str, Any]:
    funnel = {
        "type": "bar",
        "data": {
            "labels": [_("assigned"), _("contacted"), _("interested"), _("converted")],
            "datasets": [
                {
                    "label": _("Customers"),
                    "data": [dash.funnel[k] for k in ("assigned", "contacted", "interested", "converted")],
                    "backgroundColor": ["#198754", "#20c997", "#0dcaf0", "#0d6efd"],
                }
            ],
        },
        "options": {"indexAxis": "y", "plugins": {"legend": {"display": False}}},
    }
    trend = {
        "type": "line",
        "data": {
            "labels": [r["day"] for r in dash.trend],
            "datasets": [
                {
                    "label": _("Contacted"),
                    "data": [r["contacted"] for r in dash.trend],
                    "borderColor": "#20c997",
                },
                {
                    "label": _("Interested"),
                    "data": [r["interested"] for r in dash.trend],
                    "borderColor": "#0dcaf0",
                },
                {
                    "label": _("Converted"),
                    "data": [r["converted"] for r in dash.trend],
                    "borderColor": "#0d6efd",
                },
            ],
        },
    }
    attainment = None
    if measures:
        m = measures[0]
        attainment = {
            "type": "bar",
            "data": {
                "labels": [r["branch"] for r in dash.by_branch],
                "datasets": [
                    {
                        "label": f"{m} " + _("achieved"),
                        "data": [float(r[f"{m}:achieved"]) for r in dash.by_branch],
                        "backgroundColor": "#198754",
                    },
                    {
                        "label": f"{m} " + _("target"),
                        "data": [float(r[f"{m}:target"] or 0) for r in dash.by_branch],
                        "backgroundColor": "#adb5bd",
                    },
                ],
            },
        }
    return {"funnel": funnel, "trend": trend, "attainment": attainment}


@bp.get("/<int:campaign_id>/dashboard")
@roles_required(*ROLES)
def dashboard(campaign_id: int) -> Any:
    scope = current_scope()
    campaign = services.get_campaign(db.session, scope, campaign_id)
    dash = queries.build(db.session, scope, campaign)
    measures = queries.target_measures(db.session, campaign)
    shown = [name for name in TABLES if name != "grids" or dash.grids]  # grids: canvassing only
    tables = {name: table_rows(dash, name, measures) for name in shown}
    return render_template(
        "campaign_dashboard/dashboard.html",
        campaign=campaign,
        dash=dash,
        tables=tables,
        charts=_charts(dash, measures),
        pct=_pct,
        titles={
            "funnel": _("Funnel and rates"),
            "branches": _("Attainment per branch"),
            "staff": _("Attainment per staff member"),
            "leaderboard": _("Leaderboard"),
            "trend": _("Daily trend"),
            "reasons": _("Why assignments went where"),
            "grids": _("Per grid (扫街扫楼)"),
        },
    )


@bp.get("/<int:campaign_id>/dashboard/<name>.xlsx")
@roles_required(*ROLES)
def download(campaign_id: int, name: str) -> Any:
    if name not in TABLES:
        abort(404)
    scope = current_scope()
    campaign = services.get_campaign(db.session, scope, campaign_id)
    dash = queries.build(db.session, scope, campaign)
    header, rows = table_rows(dash, name, queries.target_measures(db.session, campaign))
    audit(db.session, current_staff_id(), "export", "campaign", campaign.id, detail={"table": name})
    db.session.commit()
    try:
        from web.exports import send_table
    except ImportError:  # pragma: no cover - the shared export module is part of the product
        return _xlsx_response(f"{campaign.code}-{name}.xlsx", name, header, rows)
    return send_table(rows, header, f"{campaign.code}-{name}", fmt="xlsx")


def _xlsx_response(filename: str, name: str, header: list[str], rows: list[list[Any]]) -> Any:
    """Fallback writer (xlsxwriter, formula-like strings neutralised)."""
    import xlsxwriter

    buf = io.BytesIO()
    book = xlsxwriter.Workbook(
        buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = book.add_worksheet(name[:31])
    bold = book.add_format({"bold": True})
    for col, h in enumerate(header):
        sheet.write_string(0, col, str(_safe(h)), bold)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            if isinstance(value, bool) or value is None:
                sheet.write_string(r, col, "" if value is None else str(value))
            elif isinstance(value, int | Decimal):
                sheet.write_number(r, col, value)  # type: ignore[arg-type]
            else:
                sheet.write_string(r, col, str(_safe(value)))
    book.close()
    buf.seek(0)
    return send_file(
        buf,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=filename,
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
