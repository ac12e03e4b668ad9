"""Diagrams drawn from the machine's own definition: SVG for pages, Mermaid for documents."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from campaigns.machine import assignment_workflow, campaign_workflow
from tasks.machine import task_workflow
from workflow.diagram import layout, render_svg, to_mermaid
from workflow.engine import Transition, Workflow

SVG = "{http://www.w3.org/2000/svg}"
WORKFLOWS = [campaign_workflow, assignment_workflow, task_workflow]


@pytest.fixture(autouse=True)
def _restore_workflow_registry():  # noqa: ANN202
    """Workflows declared by a test leave the process-wide registry afterwards (the state-machine
    document and the diagrams page list every registered workflow)."""
    saved = dict(Workflow.registry)
    yield
    Workflow.registry.clear()
    Workflow.registry.update(saved)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


@pytest.mark.parametrize("wf", WORKFLOWS, ids=lambda wf: wf.name)
def test_svg_has_every_state_and_every_edge_label(wf: Workflow) -> None:
    root = parse(render_svg(wf))
    groups = root.findall(f"{SVG}g")
    assert sorted(g.get("data-state") for g in groups) == sorted(wf.states)
    texts = " / ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    for _src, trigger, _dest in wf.edges():
        assert trigger in texts
    for state in wf.states:
        assert state in texts
    # one arrow per (source, dest) pair
    pairs = {(s, d) for s, _t, d in wf.edges()}
    assert len(root.findall(f"{SVG}path")) == len(pairs)
    assert root.get("role") == "img" and wf.name in (root.get("aria-label") or "")


@pytest.mark.parametrize("current", campaign_workflow.states)
def test_svg_lights_only_the_current_state(current: str) -> None:
    root = parse(render_svg(campaign_workflow, current))
    lit = [
        g.get("data-state") for g in root.findall(f"{SVG}g") if "current" in (g.get("class") or "").split()
    ]
    assert lit == [current]


def test_svg_without_current_lights_nothing() -> None:
    assert 'class="state current"' not in render_svg(campaign_workflow)


def test_svg_uses_translated_labels_and_escapes_them() -> None:
    svg = render_svg(
        campaign_workflow,
        "draft",
        labels={"draft": "草稿 <new>"},
        trigger_labels={"launch": "发布 & 启动"},
    )
    root = parse(svg)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "草稿 <new>" in texts and "发布 & 启动" in texts
    assert "&lt;new&gt;" in svg and "&amp;" in svg


def test_svg_has_no_inline_style_or_script() -> None:
    svg = render_svg(campaign_workflow, "active")
    assert "<script" not in svg and "style=" not in svg


def test_layout_puts_states_in_columns_by_distance_from_initial() -> None:
    pos = layout(campaign_workflow)
    x = {s: p[0] for s, p in pos.items()}
    assert x["draft"] < x["scheduled"] < x["active"] < x["closed"] < x["settled"]
    assert len(set(pos.values())) == len(pos)  # no two boxes on one spot


def test_unreachable_states_are_still_drawn() -> None:
    model = type("Island", (), {})
    wf = Workflow("island", model, ["a", "b", "lonely"], [Transition.of("go", "a", "b")], initial="a")
    root = parse(render_svg(wf))
    assert "lonely" in {g.get("data-state") for g in root.findall(f"{SVG}g")}


def test_mermaid_lists_initial_state_and_every_edge() -> None:
    text = to_mermaid(campaign_workflow)
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert lines[1].strip() == "[*] --> draft"
    edges = {tuple(re.match(r"\s+(\w+) --> (\w+): (\w+)$", line).groups()) for line in lines[2:]}  # type: ignore[union-attr]
    assert edges == {(s, d, t) for s, t, d in campaign_workflow.edges()}
    assert ("active", "paused", "pause") in edges and ("paused", "active", "resume") in edges
    assert len(lines) == 2 + len(campaign_workflow.edges())
