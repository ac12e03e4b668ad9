"""Demo customers of the 蓬溪县 union: individuals of the seed's segments, shops, institutions.

Deterministic from ``ctx.rng``; bulk inserts only (a few thousand customers take a second or two).
Every customer gets 12 month-end snapshots; about 1 % lose a large part of their assets in the
last month, a few have unstable funds or an overdue loan, so alerts and retention tasks appear.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from config import clock
from customers import alerts, contribution
from customers.identity import make_id_number
from customers.models import Customer, CustomerTag, Holding, Snapshot

#: 蓬溪县 (遂宁市) region code of resident ID numbers.
REGION = "510921"
COUNTY = "四川省遂宁市蓬溪县"

#: Per branch: (town, urban street grids, villages).
PLACES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "B01": (
        "赤城镇",
        ("上河街网格", "下河街网格", "滨江社区网格", "蓬溪中学片区", "城东商圈"),
        ("桂花村", "白鹤村"),
    ),
    "B02": ("赤城镇", ("城北社区网格", "农贸市场片区"), ("观音村", "黄泥村", "长乐村")),
    "B03": ("新会镇", ("新会场镇",), ("大佛村", "金龙村", "双河村", "石板村")),
    "B04": ("天福镇", ("天福场镇",), ("青龙村", "回水村", "高峰村")),
    "B05": ("明月镇", ("明月场镇",), ("莲花村", "宝塔村", "红光村")),
}

#: Street grids and villages get codes G01, G02 … in the order above (campaign populations use them).
GRID_NAMES: dict[str, str] = {
    f"G{n:02d}": name
    for n, name in enumerate(
        (name for _town, grids, villages in PLACES.values() for name in (*grids, *villages)), start=1
    )
}
_GRID_CODES = {name_: code for code, name_ in GRID_NAMES.items()}

SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱何郭罗谢唐冯邓蒋曾彭廖袁漆敬蒲"
GIVEN = "德明华建国秀英志强淑芬玉兰春梅永福桂芳家豪小琴晓燕俊峰红霞文杰海燕光荣兴贵世军"

#: segment tag → (occupation, share, urban share)
SEGMENTS: dict[str, tuple[str, float, float]] = {
    "farmer": ("农民", 0.36, 0.05),
    "returning_migrant_worker": ("返乡农民工", 0.18, 0.3),
    "self_employed": ("个体工商户", 0.16, 0.7),
    "institution_employee": ("事业单位职工", 0.12, 0.85),
    "civil_servant": ("公务员", 0.06, 0.95),
    "retired": ("退休", 0.12, 0.5),
}

INSTITUTIONS = [
    ("县人民医院", "12510921MB1543910", 860, "B01"),
    ("城关中学", "12510921MB1547260", 210, "B01"),
    ("实验小学", "12510921MB1548050", 140, "B02"),
    ("县财政局", "11510921MB0861122", 95, "B01"),
]
SHOPS = ("超市", "农资店", "火锅店", "五金店", "农家乐", "药房", "手机店", "粮油店", "汽修店", "茶楼")

#: needs tendencies per segment: preferred product, term, return expectation, risk appetite
NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "farmer": (
        ("time_deposit", "demand_deposit", "time_deposit"),
        ("1y", "3y"),
        ("low", "medium"),
        ("conservative",),
    ),
    "returning_migrant_worker": (
        ("time_deposit", "large_cd", "demand_deposit"),
        ("1y", "3y"),
        ("medium",),
        ("conservative", "balanced"),
    ),
    "self_employed": (
        ("demand_deposit", "wealth", "demand_deposit"),
        ("none", "3m"),
        ("medium", "high"),
        ("balanced", "aggressive"),
    ),
    "institution_employee": (
        ("wealth", "large_cd", "time_deposit"),
        ("1y", "3y"),
        ("medium",),
        ("balanced",),
    ),
    "civil_servant": (
        ("large_cd", "wealth", "time_deposit"),
        ("3y", "5y"),
        ("medium",),
        ("conservative", "balanced"),
    ),
    "retired": (("time_deposit", "treasury_bond"), ("3y", "5y"), ("low", "medium"), ("conservative",)),
}


def credit_code(seed: str) -> str:
    """A valid unified social credit code (GB 32100-2015) from 17 characters."""
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    total = sum(chars.index(c) * w for c, w in zip(seed, weights, strict=True))
    return seed + chars[(31 - total % 31) % 31]


def month_ends(last: dt.date, count: int = 12) -> list[dt.date]:
    """The ``count`` month-ends up to and including ``last``'s month-end before today."""
    out = []
    day = last
    for _ in range(count):
        out.append(day)
        day = day.replace(day=1) - dt.timedelta(days=1)
    return list(reversed(out))


def seed(session: Session, ctx: Any) -> None:
    rng = ctx.rng
    today = clock.today()
    last_month_end = today.replace(day=1) - dt.timedelta(days=1)
    dates = month_ends(last_month_end)
    branch_codes = [c for c in sorted(ctx.branches) if c in PLACES]
    managers = {
        code: [
            s
            for _no, s in sorted(ctx.staff.items())
            if s.branch_id == ctx.branches[code].id and any(r.role == "manager" for r in s.roles)
        ]
        for code in branch_codes
    }
    seg_names = list(SEGMENTS)
    seg_weights = [SEGMENTS[s][1] for s in seg_names]

    customers: list[dict[str, Any]] = []
    meta: list[dict[str, Any]] = []  # per customer: segment, wealth level, tags, holdings
    n_total = int(getattr(ctx, "customers", 3000) or 3000)
    n_business = max(4, n_total // 25)
    n_people = max(1, n_total - n_business - len(INSTITUTIONS))

    for i in range(n_people):
        code = branch_codes[i % len(branch_codes)] if rng.random() < 0.7 else rng.choice(branch_codes)
        town, grids, villages = PLACES[code]
        segment = rng.choices(seg_names, seg_weights)[0]
        occupation, _share, urban_share = SEGMENTS[segment]
        urban = rng.random() < urban_share
        grid = rng.choice(grids if urban else villages)
        if segment == "retired":
            birth = dt.date(rng.randint(1940, 1964), rng.randint(1, 12), rng.randint(1, 28))
        elif segment == "returning_migrant_worker":
            birth = dt.date(rng.randint(1970, 2000), rng.randint(1, 12), rng.randint(1, 28))
        else:
            birth = dt.date(rng.randint(1958, 2003), rng.randint(1, 12), rng.randint(1, 28))
        male = rng.random() < (0.6 if segment in ("farmer", "returning_migrant_worker") else 0.5)
        seq = rng.randint(0, 499) * 2 + (1 if male else 0)
        name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice((1, 2, 2))))
        tags = [segment]
        if segment == "institution_employee":
            tags.append("payroll:" + rng.choice(INSTITUTIONS)[0])
        mgr_list = managers.get(code) or []
        manager = rng.choice(mgr_list) if mgr_list and rng.random() < 0.9 else None
        address = f"{COUNTY}{town}{grid.replace('网格', '').replace('片区', '')}{rng.randint(1, 12)}组{rng.randint(1, 99)}号"
        needs = NEEDS[segment]
        wants_needs = rng.random() < 0.75
        customers.append(
            {
                "customer_no": f"620{i + 1:07d}",
                "type": "individual",
                "name": name,
                "id_number": make_id_number(REGION, birth, seq),
                "phone": rng.choice(("138", "139", "158", "159", "182", "187", "135", "177"))
                + f"{rng.randint(0, 99_999_999):08d}",
                "gender": "M" if male else "F",
                "birth_date": birth,
                "occupation": occupation,
                "area": "urban" if urban else "rural",
                "address": address,
                "grid": _GRID_CODES[grid],
                "tags": tags,
                "branch_id": ctx.branches[code].id,
                "manager_id": manager.id if manager else None,
                "preferred_channel": rng.choice((None, None, None, "phone", "visit", "wechat")),
                "contact_window": rng.choice((None, None, None, "18:00-21:00", "09:00-12:00")),
                "do_not_contact": rng.random() < 0.01,
                "marketing_consent": rng.random() > 0.03,
                "notes": rng.choice(
                    (None, None, "性格爽快，喜欢打麻将", "谨慎，重视利率", "热心，常介绍亲友", "关心子女教育")
                ),
                "needs": {
                    "preferred_product": rng.choice(needs[0]),
                    "term": rng.choice(needs[1]),
                    "return_expectation": rng.choice(needs[2]),
                    "risk_appetite": rng.choice(needs[3]),
                }
                if wants_needs
                else None,
                "lifecycle": rng.choice(("active",) * 8 + ("new", "dormant")),
                "risk_status": "normal",
            }
        )
        level = {
            "civil_servant": 120_000,
            "institution_employee": 90_000,
            "self_employed": 150_000,
            "retired": 80_000,
        }
        meta.append(
            {
                "segment": segment,
                "level": level.get(segment, 40_000),
                "urban": urban,
                "age": today.year - birth.year,
            }
        )

    for j in range(n_business):
        code = rng.choice(branch_codes)
        town, grids, villages = PLACES[code]
        owner = rng.choice(SURNAMES) + rng.choice(("记", "氏", "家"))
        mgr_list = managers.get(code) or []
        customers.append(
            {
                "customer_no": f"680{j + 1:07d}",
                "type": "business",
                "name": f"蓬溪县{town}{owner}{rng.choice(SHOPS)}",
                "credit_code": credit_code(f"92510921MA{j:06d}6"),
                "contact_person": rng.choice(SURNAMES) + rng.choice(GIVEN),
                "phone": "139" + f"{rng.randint(0, 99_999_999):08d}",
                "employees": rng.randint(1, 30),
                "occupation": "个体工商户",
                "area": "urban" if rng.random() < 0.7 else "rural",
                "address": f"{COUNTY}{town}{grids[j % len(grids)]}",
                "grid": _GRID_CODES[grids[j % len(grids)]],
                "tags": ["self_employed", "business"],
                "branch_id": ctx.branches[code].id,
                "manager_id": rng.choice(mgr_list).id if mgr_list else None,
                "lifecycle": "active",
                "risk_status": "normal",
            }
        )
        meta.append({"segment": "business", "level": 300_000, "urban": True, "age": 0})

    for k, (name, code_, employees, branch) in enumerate(INSTITUTIONS):
        mgr_list = managers.get(branch) or []
        customers.append(
            {
                "customer_no": f"690{k + 1:07d}",
                "type": "institution",
                "name": name,
                "credit_code": credit_code(code_[:17]),
                "contact_person": "财务科",
                "employees": employees,
                "payroll_bank": rng.choice(("蓬溪农信", "工商银行", "建设银行", "邮储银行")),
                "occupation": "事业单位",
                "area": "urban",
                "address": f"{COUNTY}赤城镇",
                "grid": _GRID_CODES[PLACES[branch][1][0]],
                "tags": ["institution"],
                "branch_id": ctx.branches[branch].id,
                "manager_id": mgr_list[0].id if mgr_list else None,
                "lifecycle": "active",
                "risk_status": "normal",
            }
        )
        meta.append({"segment": "institution", "level": 8_000_000, "urban": True, "age": 0})

    result = session.execute(insert(Customer).returning(Customer.id, sort_by_parameter_order=True), customers)
    ids = [row[0] for row in result]

    tag_rows: list[dict[str, Any]] = []
    holding_rows: list[dict[str, Any]] = []
    snap_rows: list[dict[str, Any]] = []
    for cid, c, m in zip(ids, customers, meta, strict=True):
        for tag in dict.fromkeys(c["tags"]):
            tag_rows.append({"customer_id": cid, "tag": tag})
        products = ["debit_card"]
        young = 0 < m["age"] < 50
        if rng.random() < (0.8 if young and m["urban"] else 0.45 if young else 0.2):
            products.append("mobile_banking")
        if m["segment"] in ("institution_employee", "civil_servant") and rng.random() < 0.7:
            products.append("payroll_account")
        if m["segment"] in ("business", "self_employed", "institution") and rng.random() < 0.5:
            products.append("online_banking")
        for p in products:
            opened = dates[0] - dt.timedelta(days=rng.randint(30, 3000))
            holding_rows.append(
                {"customer_id": cid, "product": p, "opened_on": opened, "branch_id": c["branch_id"]}
            )

        base = Decimal(int(rng.lognormvariate(0, 1.0) * m["level"]))
        time_share = Decimal(str(round(rng.uniform(0.2, 0.8), 2)))
        has_loan = m["segment"] in ("self_employed", "business", "farmer") and rng.random() < 0.25
        loan = Decimal(rng.randint(20, 500) * 1000) if has_loan else Decimal(0)
        has_wealth = rng.random() < (0.3 if m["level"] >= 90_000 else 0.05)
        fate = rng.random()
        drop = fate < 0.01  # the last month: most of the money leaves
        unstable = 0.01 <= fate < 0.02
        overdue = has_loan and rng.random() < 0.04
        trend = Decimal(str(round(rng.uniform(-0.01, 0.03), 3)))
        for month, day in enumerate(dates):
            level = base * (1 + trend * month)
            if unstable:
                level = base * Decimal(str(round(rng.choice((0.1, 0.3, 1.6, 2.2)), 2)))
            if drop and month == len(dates) - 1:
                level = level * Decimal(str(round(rng.uniform(0.2, 0.5), 2)))
            if m["segment"] == "returning_migrant_worker" and day.month in (1, 2):
                level = level * Decimal("1.6")  # money brought home for the Spring Festival
            level = level.quantize(Decimal("0.01"))
            time_dep = (level * time_share).quantize(Decimal("0.01"))
            snap_rows.append(
                {
                    "customer_id": cid,
                    "as_of": day,
                    "deposit_demand": level - time_dep,
                    "deposit_time": time_dep,
                    "loan": loan,
                    "wealth": (level * Decimal("0.3")).quantize(Decimal("0.01"))
                    if has_wealth
                    else Decimal(0),
                    "avg_daily_deposit": (level * Decimal(str(round(rng.uniform(0.9, 1.05), 3)))).quantize(
                        Decimal("0.01")
                    ),
                    "risk_status": "overdue" if overdue and month == len(dates) - 1 else "normal",
                }
            )
    session.execute(insert(CustomerTag), tag_rows)
    session.execute(insert(Holding), holding_rows)
    for start in range(0, len(snap_rows), 20_000):
        session.execute(insert(Snapshot), snap_rows[start : start + 20_000])
    session.flush()
    contribution.recompute(session, as_of=dates[-1])
    alerts.detect(session, alerts.period_of(dates[-1]), today=today)
    session.flush()
    ctx.extra["customers"] = {"count": len(ids), "last_snapshot": dates[-1]}
