"""docs/state-machines.md is generated from the machines and must not go stale."""

from pathlib import Path

from workflow.diagram import machines_markdown


def test_state_machine_document_is_up_to_date():
    doc = Path(__file__).resolve().parents[2] / "docs" / "state-machines.md"
    assert doc.read_text(encoding="utf-8") == machines_markdown(), (
        "docs/state-machines.md is stale: run `campaignflow diagrams`"
    )
