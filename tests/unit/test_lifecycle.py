"""The ticket status machine: allowed moves, roles, reasons, and the tier/queue consequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from incucare.domain.errors import IllegalTransition, PermissionDenied, ValidationFailed
from incucare.domain.lifecycle import (
    TRANSITIONS,
    allowed_targets,
    check_reported_at,
    decide_move,
    format_ticket_number,
)
from incucare.domain.model import Queue, Role, TicketStatus, Tier

S = TicketStatus
NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def test_every_status_has_an_entry_and_only_cancelled_is_a_dead_end():
    assert set(TRANSITIONS) == set(TicketStatus)
    dead_ends = {s for s in TicketStatus if not allowed_targets(s)}
    assert dead_ends == {S.CANCELLED}


def test_closed_can_only_be_reopened():
    assert allowed_targets(S.CLOSED) == {S.REOPENED}


def test_happy_path_of_an_onsite_repair_is_allowed_step_by_step():
    path = [S.NEW, S.ACKNOWLEDGED, S.REMOTE_TROUBLESHOOTING, S.AWAITING_DISPATCH, S.DISPATCHED, S.ACCEPTED,
            S.EN_ROUTE, S.ON_SITE, S.RESOLVED, S.CLOSED]
    for current, target in pairwise(path):
        assert target in allowed_targets(current), f"{current} -> {target}"


@pytest.mark.parametrize(("current", "target"), [
    (S.NEW, S.CLOSED), (S.NEW, S.ON_SITE), (S.CLOSED, S.RESOLVED), (S.CANCELLED, S.REOPENED),
    (S.RESOLVED, S.ACKNOWLEDGED), (S.AWAITING_DISPATCH, S.ON_SITE),
])
def test_illegal_moves_are_refused_with_the_allowed_list(current, target):
    with pytest.raises(IllegalTransition) as err:
        decide_move(current, target, tier=Tier.REMOTE, role=Role.ADMIN, reason="x")
    assert current.value in err.value.message and target.value in err.value.message
    assert err.value.details[0]["allowed"] == sorted(s.value for s in allowed_targets(current))


def test_moving_to_dispatch_raises_tier_to_two_and_hands_to_dispatch_queue():
    out = decide_move(S.REMOTE_TROUBLESHOOTING, S.AWAITING_DISPATCH, tier=Tier.REMOTE, role=Role.AGENT)
    assert out.tier is Tier.ONSITE and out.queue is Queue.DISPATCH


def test_escalation_to_hq_raises_tier_to_three_and_hands_to_hq_queue():
    out = decide_move(S.ON_SITE, S.ESCALATED_HQ, tier=Tier.ONSITE, role=Role.ENGINEER, reason="mainboard fw")
    assert out.tier is Tier.HQ and out.queue is Queue.HQ


def test_tier_never_goes_down_when_hq_sends_an_engineer():
    out = decide_move(S.ESCALATED_HQ, S.AWAITING_DISPATCH, tier=Tier.HQ, role=Role.HQ_EXPERT)
    assert out.tier is Tier.HQ and out.queue is None


def test_a_declined_job_goes_back_to_the_dispatch_queue():
    out = decide_move(S.DISPATCHED, S.AWAITING_DISPATCH, tier=Tier.ONSITE, role=Role.ENGINEER)
    assert out.queue is Queue.DISPATCH


@pytest.mark.parametrize("target", [S.CANCELLED, S.ESCALATED_HQ, S.WAITING_CUSTOMER, S.WAITING_PARTS])
def test_pauses_escalations_and_cancellations_need_a_reason(target):
    with pytest.raises(ValidationFailed):
        decide_move(S.ACKNOWLEDGED, target, tier=Tier.REMOTE, role=Role.AGENT, reason="  ")
    decide_move(S.ACKNOWLEDGED, target, tier=Tier.REMOTE, role=Role.AGENT, reason="客户要求")


def test_customer_confirms_closure_and_may_reopen_but_not_work_the_ticket():
    decide_move(S.RESOLVED, S.CLOSED, tier=Tier.ONSITE, role=Role.CUSTOMER)
    decide_move(S.CLOSED, S.REOPENED, tier=Tier.ONSITE, role=Role.CUSTOMER, reason="again")
    with pytest.raises(PermissionDenied):
        decide_move(S.NEW, S.RESOLVED, tier=Tier.REMOTE, role=Role.CUSTOMER)


def test_customer_may_withdraw_only_before_an_engineer_is_sent():
    decide_move(S.NEW, S.CANCELLED, tier=Tier.REMOTE, role=Role.CUSTOMER, reason="fixed it")
    with pytest.raises(PermissionDenied):
        decide_move(S.DISPATCHED, S.CANCELLED, tier=Tier.ONSITE, role=Role.CUSTOMER, reason="fixed it")


def test_only_dispatch_roles_dispatch():
    with pytest.raises(PermissionDenied):
        decide_move(S.AWAITING_DISPATCH, S.DISPATCHED, tier=Tier.ONSITE, role=Role.AGENT)
    decide_move(S.AWAITING_DISPATCH, S.DISPATCHED, tier=Tier.ONSITE, role=Role.DISPATCHER)


def test_reported_at_rules():
    assert check_reported_at(NOW - timedelta(hours=3), now=NOW) == NOW - timedelta(hours=3)
    check_reported_at(NOW + timedelta(minutes=1), now=NOW)  # small clock skew tolerated
    with pytest.raises(ValidationFailed, match="future"):
        check_reported_at(NOW + timedelta(hours=1), now=NOW)
    with pytest.raises(ValidationFailed, match="30 days"):
        check_reported_at(NOW - timedelta(days=31), now=NOW)
    with pytest.raises(ValidationFailed, match="time zone"):
        check_reported_at(datetime(2026, 12, 4, 8, 0), now=NOW)


def test_ticket_numbers_are_readable_and_zero_padded():
    assert format_ticket_number(2026, 123) == "T2026-000123"
    with pytest.raises(ValueError):
        format_ticket_number(2026, 0)
