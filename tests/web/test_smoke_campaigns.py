"""Director journey on the campaign pages: list, detail with diagram, launch, pause, impossible action."""

from __future__ import annotations

from campaigns.models import Campaign
from tests.factories import login, make_campaign, make_customer
from workflow.models import TransitionRecord


def test_director_launches_and_pauses_a_campaign(client, session, union):
    for _ in range(3):
        make_customer(session, union.b1, union.m1)
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    login(client, union.director_b1)

    page = client.get(f"/campaigns/{campaign.id}")
    assert page.status_code == 200
    assert b"<svg" in page.data and b'data-state="draft"' in page.data

    r = client.post(f"/campaigns/{campaign.id}/action", data={"action": "launch"})
    assert r.status_code == 303
    session.expire_all()
    c = session.get(Campaign, campaign.id)
    assert c.state == "active"  # start date is today: straight to active
    triggers = [h.trigger for h in session.query(TransitionRecord).filter_by(entity="campaign", entity_id=c.id)]
    assert triggers == ["launch", "start"]

    r = client.post(f"/campaigns/{campaign.id}/action", data={"action": "pause", "reason": "春节"})
    assert r.status_code == 303
    session.expire_all()
    assert session.get(Campaign, campaign.id).state == "paused"

    r = client.post(f"/campaigns/{campaign.id}/action", data={"action": "launch"})
    assert r.status_code == 409
    assert b"it is paused" in r.data and b"resume" in r.data


def test_manager_cannot_act_and_other_branch_director_sees_404(client, session, union):
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    login(client, union.m1)
    assert client.post(f"/campaigns/{campaign.id}/action", data={"action": "launch"}).status_code == 403
    login(client, union.director_b2)
    assert client.get(f"/campaigns/{campaign.id}").status_code == 404


def test_manager_sees_only_campaigns_of_own_branch(client, session, union):
    mine = make_campaign(session, union.director_b1, [union.b1], name="城关活动")
    other = make_campaign(session, union.director_b2, [union.b2], name="新场活动")
    session.commit()
    login(client, union.m1)
    page = client.get("/campaigns/").get_data(as_text=True)
    assert "城关活动" in page and "新场活动" not in page
    assert client.get(f"/campaigns/{other.id}").status_code == 404
    assert client.get(f"/campaigns/{mine.id}").status_code == 200


def test_workflows_page_draws_every_machine(client, union):
    login(client, union.director)
    page = client.get("/workflows").get_data(as_text=True)
    for name in ("campaign", "assignment", "task", "claim", "bounty", "incentive_run", "dispute"):
        assert f'id="machine-{name}"' in page
    assert page.count("<svg") >= 7
