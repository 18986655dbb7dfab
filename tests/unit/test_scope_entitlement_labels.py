"""Tenant scopes, which contract applies, and zh/en labels."""

from __future__ import annotations

from datetime import date

import pytest

from incucare.domain.entitlement import ContractTerm, check_sla_targets, pick_contract
from incucare.domain.model import ContractKind, CustomerKind, Owner, OwnerKind, Queue, Role, TicketStatus, Tier
from incucare.domain.scope import Scope, scope_for


def test_customer_is_scoped_to_its_organisation():
    assert scope_for(Role.CUSTOMER, region_id=3, customer_id=7) == Scope(customer_id=7)


def test_partner_is_scoped_to_its_region():
    assert scope_for(Role.PARTNER, region_id=3, customer_id=99) == Scope(region_id=3)


def test_every_staff_role_sees_everything_engineers_included():
    for role in (Role.ADMIN, Role.SERVICE_MANAGER, Role.HQ_EXPERT, Role.DISPATCHER, Role.AGENT, Role.ENGINEER):
        assert scope_for(role, region_id=3, customer_id=None) == Scope(everything=True), role


def test_misconfigured_outsiders_see_nothing():
    nothing = Scope()
    assert not (nothing.everything or nothing.region_id or nothing.customer_id)
    assert scope_for(Role.CUSTOMER, region_id=None, customer_id=None) == nothing
    assert scope_for(Role.PARTNER, region_id=None, customer_id=None) == nothing


def _term(cid, kind, start, end):
    return ContractTerm(cid, kind, start, end)


def test_vip_beats_annual_beats_warranty():
    terms = [
        _term(1, ContractKind.WARRANTY, date(2025, 1, 1), date(2027, 1, 1)),
        _term(2, ContractKind.ANNUAL_MAINTENANCE, date(2026, 1, 1), date(2026, 12, 31)),
        _term(3, ContractKind.VIP_SERVICE, date(2026, 6, 1), date(2026, 12, 31)),
    ]
    assert pick_contract(terms, date(2026, 7, 1)).contract_id == 3
    assert pick_contract(terms, date(2026, 3, 1)).contract_id == 2
    assert pick_contract(terms, date(2025, 3, 1)).contract_id == 1
    assert pick_contract(terms, date(2027, 6, 1)) is None


def test_contract_end_day_is_still_covered():
    terms = [_term(1, ContractKind.WARRANTY, date(2025, 1, 1), date(2026, 1, 1))]
    assert pick_contract(terms, date(2026, 1, 1)) is not None
    assert pick_contract(terms, date(2026, 1, 2)) is None


def test_sla_targets_are_validated():
    assert check_sla_targets({"first_response": 60}) == {"first_response": 60}
    with pytest.raises(ValueError, match="unknown SLA clock"):
        check_sla_targets({"arrival": 60})
    with pytest.raises(ValueError, match="positive"):
        check_sla_targets({"onsite": 0})
    with pytest.raises(ValueError, match="positive"):
        check_sla_targets({"onsite": True})


def test_every_code_has_chinese_and_english_labels():
    for enum in (TicketStatus, ContractKind, CustomerKind, Role, Queue):
        for member in enum:
            assert (member.zh and member.en and member.zh != member.en) or member.value == "api"
    assert Tier.ONSITE.label("zh").startswith("二级")
    assert Tier.HQ.label("en").startswith("Tier 3")


def test_labels_parse_from_value_english_or_chinese():
    assert CustomerKind.parse("IVF centre") is CustomerKind.IVF_CENTRE
    assert CustomerKind.parse("生殖中心(IVF)") is CustomerKind.IVF_CENTRE
    assert CustomerKind.parse("gmp_pharma") is CustomerKind.GMP_PHARMA
    with pytest.raises(ValueError, match="is not one of"):
        CustomerKind.parse("zoo")


def test_owner_is_never_empty():
    with pytest.raises(ValueError):
        Owner(OwnerKind.USER)
    with pytest.raises(ValueError):
        Owner(OwnerKind.QUEUE)
    assert Owner.of_queue(Queue.HQ).key() == "queue:hq"
    assert Owner.person(5).key() == "user:5"
