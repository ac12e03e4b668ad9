"""Classification of personal financial information (RELIABILITY PII-01).

Every column of the tables that hold customer or pay data is classified here, in one register a
reviewer can read in one sitting, with the categories of JR/T 0171—2020 §4.2:

* **C3** — authentication information (passwords, PINs, one-time codes). campaignflow never
  collects it; the test suite fails if any column is tagged C3.
* **C2** — information that identifies a person or reveals their finances: names, ID numbers,
  phones, addresses, balances, what was said in a contact, a staff member's pay.
* **C1** — the institution's own working data: ids, codes, states, dates, flags.

and a sensitivity level 1–4 (JR/T 0197—2020 style: 4 identity numbers, 3 other C2, 2 internal
data about a person, 1 technical). :func:`apply` copies the register onto the columns'
``info`` (``column.info == {"pfi": "C2", "level": 3}``) when the models are imported;
``tests/unit/test_privacy_register.py`` fails the build on an untagged column of these tables,
a register entry for a column that no longer exists, and any C3.
"""

from __future__ import annotations

from typing import Any

C1, C2, C3 = "C1", "C2", "C3"

#: (category, level) shorthands
ID = (C1, 1)  # surrogate keys, foreign keys, versions, technical timestamps
WORK = (C1, 2)  # the institution's working data about a person (state, dates, codes, flags)
PERSONAL = (C2, 3)  # identifies a person or reveals their finances
IDENTITY = (C2, 4)  # identity numbers

REGISTER: dict[str, dict[str, tuple[str, int]]] = {
    "customer": {
        "id": ID,
        "customer_no": WORK,
        "type": WORK,
        "name": PERSONAL,
        "id_number": IDENTITY,
        "phone": PERSONAL,
        "gender": PERSONAL,
        "birth_date": PERSONAL,
        "occupation": PERSONAL,
        "area": WORK,
        "address": PERSONAL,
        "grid": WORK,
        "tags": WORK,
        "branch_id": ID,
        "manager_id": ID,
        "preferred_channel": WORK,
        "contact_window": WORK,
        "do_not_contact": WORK,
        "marketing_consent": WORK,
        "notes": PERSONAL,
        "needs": PERSONAL,
        "referred_by_customer_id": ID,
        "referred_by_staff_id": ID,
        "lifecycle": WORK,
        "credit_code": IDENTITY,
        "contact_person": PERSONAL,
        "employees": WORK,
        "payroll_bank": WORK,
        "contribution": PERSONAL,
        "contribution_rank": WORK,
        "tier": WORK,
        "is_key": WORK,
        "risk_status": PERSONAL,
        "created_at": ID,
        "updated_at": ID,
    },
    "customer_tag": {"customer_id": ID, "tag": WORK},
    "snapshot": {
        "customer_id": ID,
        "as_of": WORK,
        "deposit_demand": PERSONAL,
        "deposit_time": PERSONAL,
        "loan": PERSONAL,
        "wealth": PERSONAL,
        "avg_daily_deposit": PERSONAL,
        "risk_status": PERSONAL,
    },
    "holding": {
        "customer_id": ID,
        "product": PERSONAL,
        "opened_on": WORK,
        "closed_on": WORK,
        "branch_id": ID,
    },
    "alert": {
        "id": ID,
        "customer_id": ID,
        "type": WORK,
        "period": WORK,
        "detail": PERSONAL,
        "created_at": ID,
    },
    "follow_up": {
        "id": ID,
        "task_id": ID,
        "assignment_id": ID,
        "customer_id": ID,
        "staff_id": ID,
        "at": WORK,
        "channel": WORK,
        "content": PERSONAL,
        "reaction": WORK,
        "next_step": PERSONAL,
        "next_due": WORK,
        "failure_reason": PERSONAL,
        "created_at": ID,
    },
    "appointment": {
        "id": ID,
        "customer_id": ID,
        "staff_id": ID,
        "branch_id": ID,
        "at": WORK,
        "purpose": PERSONAL,
        "accompanied_by_id": ID,
        "state": WORK,
        "follow_up_id": ID,
        "reminded_at": ID,
        "created_at": ID,
        "version": ID,
    },
    "target": {
        "id": ID,
        "campaign_id": ID,
        "measure": WORK,
        "branch_id": ID,
        "staff_id": ID,
        "value": WORK,
        "split": WORK,
        "weights": WORK,
        "basis": WORK,
    },
    "claim": {
        "id": ID,
        "staff_id": ID,
        "branch_id": ID,
        "campaign_id": ID,
        "customer_id": ID,
        "assignment_id": ID,
        "task_id": ID,
        "measure": WORK,
        "quantity": WORK,
        "amount": PERSONAL,
        "evidence_text": PERSONAL,
        "evidence_file": PERSONAL,
        "state": WORK,
        "verifier_id": ID,
        "verified_at": WORK,
        "auto_verified": WORK,
        "reason": WORK,
        "flags": WORK,
        "needs_review": WORK,
        "retention_until": WORK,
        "holdback_pct": WORK,
        "holdback_amount": PERSONAL,
        "holdback_release_on": WORK,
        "ledger_event_id": ID,
        "created_at": ID,
        "version": ID,
    },
    "ledger_event": {
        "id": ID,
        "event_id": WORK,
        "occurred_on": WORK,
        "month": WORK,
        "staff_id": ID,
        "customer_id": ID,
        "campaign_id": ID,
        "measure": WORK,
        "quantity": WORK,
        "amount": PERSONAL,
        "source": WORK,
        "claim_id": ID,
        "reverses_id": ID,
        "reason": WORK,
        "created_by": ID,
        "created_at": ID,
    },
    # a staff member's pay: every line, its inputs and its explanation
    "statement_line": {
        "id": ID,
        "run_id": ID,
        "staff_id": ID,
        "branch_id": ID,
        "campaign_id": ID,
        "rule_id": WORK,
        "rule_version": WORK,
        "kind": WORK,
        "measure": WORK,
        "input": PERSONAL,
        "target": WORK,
        "computed": PERSONAL,
        "amount": PERSONAL,
        "limited_by": WORK,
        "budget_scaled_from": PERSONAL,
        "what_if": WORK,
        "formula": WORK,
        "explanation": PERSONAL,
        "explanation_zh": PERSONAL,
        "dispute_id": ID,
    },
    "dispute": {
        "id": ID,
        "line_id": ID,
        "run_id": ID,
        "month": WORK,
        "staff_id": ID,
        "branch_id": ID,
        "category": WORK,
        "text": PERSONAL,
        "attachment_name": WORK,
        "attachment": PERSONAL,
        "deadline": WORK,
        "state": WORK,
        "answer": PERSONAL,
        "adjustment": PERSONAL,
        "answered_by": ID,
        "answered_at": WORK,
        "applied_run_id": ID,
        "created_at": ID,
        "version": ID,
    },
}


REGISTER.update(
    {
        "assignment": {
            "id": ID,
            "campaign_id": ID,
            "customer_id": ID,
            "branch_id": ID,
            "staff_id": ID,
            "state": WORK,
            "reason": WORK,
            "shares": WORK,
            "plan": PERSONAL,  # likely reactions of a named customer
            "created_at": ID,
            "version": ID,
        },
        "task": {
            "id": ID,
            "kind": WORK,
            "title": WORK,
            "campaign_id": ID,
            "assignment_id": ID,
            "customer_id": ID,
            "branch_id": ID,
            "staff_id": ID,
            "delegate_id": ID,
            "due_on": WORK,
            "snoozed_until": WORK,
            "priority": WORK,
            "state": WORK,
            "source": WORK,
            "source_key": ID,
            "failed_reason": PERSONAL,
            "detail": WORK,
            "created_at": ID,
            "finished_at": ID,
            "version": ID,
        },
        # notification texts name customers masked (张*明) but may quote a reason someone typed
        "notification": {
            "id": ID,
            "staff_id": ID,
            "kind": WORK,
            "text": PERSONAL,
            "link": WORK,
            "key": ID,
            "created_at": ID,
            "read_at": ID,
        },
        "audit_log": {
            "id": ID,
            "at": WORK,
            "actor_id": ID,
            "action": WORK,
            "object_type": WORK,
            "object_id": WORK,
            "fields": WORK,
            "reason": PERSONAL,
            "detail": PERSONAL,
            "prev_hash": ID,
            "hash": ID,
        },
        "bounty": {
            "id": ID,
            "campaign_id": ID,
            "branch_id": ID,
            "title": WORK,
            "description": PERSONAL,
            "customer_id": ID,
            "amount": PERSONAL,
            "deadline": WORK,
            "exclusive_days": WORK,
            "state": WORK,
            "taken_by": ID,
            "taken_until": WORK,
            "winner_id": ID,
            "posted_by": ID,
            "paid_in": WORK,
            "created_at": ID,
            "version": ID,
        },
        "complaint": {
            "id": ID,
            "staff_id": ID,
            "customer_id": ID,
            "received_on": WORK,
            "text": PERSONAL,
            "state": WORK,
            "satisfaction": WORK,
            "verified_by": ID,
            "verified_at": WORK,
            "created_by": ID,
            "created_at": ID,
        },
    }
)
#: Staff credentials (``staff.password_hash``, ``staff.totp_secret``) are the employees' own
#: authentication data, not customers' financial information: they are hashed or only used to
#: check codes, never shown, and are outside this register.


def apply(metadata: Any) -> None:
    """Copy the register onto ``column.info`` of the tables in ``metadata``."""
    for table_name, columns in REGISTER.items():
        table = metadata.tables.get(table_name)
        if table is None:
            continue
        for name, (category, level) in columns.items():
            if name in table.columns:
                table.columns[name].info.update({"pfi": category, "level": level})


def personal_columns(metadata: Any, table_name: str) -> list[str]:
    """The C2 columns of a table (what masking and exports must care about)."""
    table = metadata.tables[table_name]
    return [c.name for c in table.columns if c.info.get("pfi") == C2]
