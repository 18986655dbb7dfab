"""The pure spare-parts rules: availability, reorder points, source choice, transfer ETA, RMA steps, input checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incucare.domain.errors import Conflict, ValidationFailed
from incucare.domain.stock import (
    Candidate,
    PartSource,
    ReturnState,
    StockPosition,
    advance_return,
    available,
    check_levels,
    check_quantity,
    choose_source,
    default_long_lead,
    fits_model,
    normalise_models,
    normalise_part_number,
    reorder_advice,
    shortage_message,
    split_consumption,
    transfer_eta,
    transfer_overdue,
)

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(("on_hand", "reserved", "in_transit", "min_qty", "max_qty", "low", "order"), [
    (5, 0, 0, 0, 0, False, 0),      # no policy: never low
    (5, 0, 0, 3, 8, False, 0),      # above min
    (3, 0, 0, 3, 8, False, 0),      # at min is not below it
    (2, 0, 0, 3, 8, True, 6),       # below min: order up to max
    (4, 2, 0, 3, 8, True, 6),       # reserved units are not available
    (2, 0, 6, 3, 8, True, 0),       # short today, but the shipment in transit covers it
    (2, 0, 1, 4, 8, True, 5),       # in transit counts towards the position, not availability
    (0, 0, 0, 1, 1, True, 1),
])
def test_stock_position_low_and_reorder(on_hand, reserved, in_transit, min_qty, max_qty, low, order):
    p = StockPosition(on_hand=on_hand, reserved=reserved, in_transit=in_transit, min_qty=min_qty, max_qty=max_qty)
    assert p.available == available(on_hand, reserved) == on_hand - reserved
    assert p.low is low
    assert p.reorder_qty == order


@pytest.mark.parametrize(("on_hand", "reserved", "in_transit"), [(-1, 0, 0), (1, 2, 0), (1, -1, 0), (1, 0, -1)])
def test_impossible_positions_are_refused(on_hand, reserved, in_transit):
    with pytest.raises(ValueError, match="impossible"):
        StockPosition(on_hand=on_hand, reserved=reserved, in_transit=in_transit)


def test_reorder_advice_text_in_both_languages():
    advice = reorder_advice(StockPosition(on_hand=1, min_qty=3, max_qty=8), part_zh="PN-1 红外 CO2 传感器",
                            part_en="PN-1 IR CO2 sensor", warehouse="SP-GZ 广州网点库")
    assert advice is not None and advice.order_qty == 7
    assert advice.text("zh") == ("SP-GZ 广州网点库:PN-1 红外 CO2 传感器 可用 1 件,低于最低库存 3 件(在途 0 件),"
                                 "建议补货 7 件至最高库存 8 件")
    assert advice.text("en") == ("SP-GZ 广州网点库: PN-1 IR CO2 sensor has 1 available, below the minimum of 3 "
                                 "(0 in transit); order 7 to bring it up to the maximum of 8")
    covered = reorder_advice(StockPosition(on_hand=1, in_transit=5, min_qty=3, max_qty=8), part_zh="x",
                             part_en="x", warehouse="w")
    assert covered is not None and covered.order_qty == 0 and "无需再补货" in covered.zh
    assert reorder_advice(StockPosition(on_hand=3, min_qty=3, max_qty=8), part_zh="x", part_en="x",
                          warehouse="w") is None


def test_shortage_message_names_what_is_left():
    en, zh = shortage_message(action_zh="预留", action_en="reserve", requested=2, on_hand=3, reserved=2,
                              part_zh="PN-1 传感器", part_en="PN-1 sensor", warehouse="VAN-07")
    assert en == "cannot reserve 2 × PN-1 sensor at VAN-07: only 1 available (3 on hand, 2 reserved)"
    assert zh == "VAN-07 的PN-1 传感器可用库存仅 1 件(在库 3,已预留 2),无法预留 2 件"


@pytest.mark.parametrize(("quantity", "reserved", "expected"), [(1, 0, (0, 1)), (1, 2, (1, 0)), (3, 2, (2, 1)),
                                                                 (2, 2, (2, 0))])
def test_consumption_uses_the_tickets_reservation_first(quantity, reserved, expected):
    assert split_consumption(quantity, reserved) == expected


VAN = Candidate(1, "VAN-07", 1)
POINT = Candidate(2, "广州网点库", 3)
HQ = Candidate(3, "总部中心库", 10)


@pytest.mark.parametrize(("quantity", "van", "point", "hq", "source", "warehouse", "days"), [
    (1, VAN, POINT, HQ, PartSource.VAN, 1, 0),
    (2, VAN, POINT, HQ, PartSource.SERVICE_POINT, 2, 0),        # never split across places
    (4, VAN, POINT, HQ, PartSource.HQ_TRANSFER, 3, 2),
    (11, VAN, POINT, HQ, PartSource.SUPPLIER_ORDER, None, 32),  # lead time 30 + transit 2
    (1, None, None, HQ, PartSource.HQ_TRANSFER, 3, 2),          # an engineer without a van
    (1, Candidate(1, "v", 0), Candidate(2, "p", 0), None, PartSource.SUPPLIER_ORDER, None, 32),
    (0, VAN, POINT, HQ, PartSource.NONE_NEEDED, None, 0),
])
def test_source_preference_van_point_hq_supplier(quantity, van, point, hq, source, warehouse, days):
    choice = choose_source(quantity, part_zh="CO2 传感器", part_en="CO2 sensor", van=van, service_point=point, hq=hq,
                           lead_time_days=30, long_lead=True)
    assert (choice.source, choice.warehouse_id, choice.eta_days) == (source, warehouse, days)
    assert choice.zh and choice.en


def test_source_reasons_read_like_a_dispatcher():
    assert choose_source(1, part_zh="CO2 传感器", part_en="CO2 sensor", van=VAN).en == (
        "1 × CO2 sensor in the engineer's van: arrives with the part")
    assert choose_source(2, part_zh="CO2 传感器", part_en="CO2 sensor", van=VAN, service_point=POINT).zh == (
        "广州网点库 有 3 件CO2 传感器,出发前领取")
    supplier = choose_source(1, part_zh="主控板", part_en="mainboard", lead_time_days=45, long_lead=True)
    assert "long-lead" in supplier.en and "长周期" in supplier.zh and supplier.eta_days == 47


def test_transfer_eta_from_transit_and_lead_time():
    assert transfer_eta(NOW) == NOW + timedelta(days=2)
    assert transfer_eta(NOW, transit_days=1) == NOW + timedelta(days=1)
    assert transfer_eta(NOW, transit_days=3, lead_time_days=30) == NOW + timedelta(days=33)
    with pytest.raises(ValidationFailed):
        transfer_eta(NOW, transit_days=61)
    with pytest.raises(ValidationFailed):
        transfer_eta(NOW, lead_time_days=-1)
    with pytest.raises(ValueError, match="aware"):
        transfer_eta(datetime(2026, 11, 27))
    eta = transfer_eta(NOW)
    assert not transfer_overdue(eta, NOW + timedelta(days=2))
    assert transfer_overdue(eta, NOW + timedelta(days=2, seconds=1))


def test_return_steps_in_order_and_retries_are_no_ops():
    assert advance_return(ReturnState.CREATED, ReturnState.SHIPPED) is True
    assert advance_return(ReturnState.SHIPPED, ReturnState.RECEIVED) is True
    assert advance_return(ReturnState.RECEIVED, ReturnState.CLOSED) is True
    assert advance_return(ReturnState.SHIPPED, ReturnState.SHIPPED) is False
    assert advance_return(ReturnState.CLOSED, ReturnState.RECEIVED) is False
    with pytest.raises(Conflict) as err:
        advance_return(ReturnState.CREATED, ReturnState.RECEIVED)
    assert "cannot become received at hq yet" in err.value.message and "待寄回" in err.value.zh


@pytest.mark.parametrize("bad", [0, -1, 10_001, True, 1.5])
def test_quantities_are_whole_and_bounded(bad):
    with pytest.raises(ValidationFailed) as err:
        check_quantity(bad)
    assert err.value.details[0]["field"] == "quantity"


def test_levels_and_part_numbers_and_models():
    assert check_levels(0, 0) == (0, 0) and check_levels(3, 8) == (3, 8)
    for lo, hi, field_name in [(5, 2, "min_qty"), (-1, 2, "min_qty"), (1, 10_001, "max_qty")]:
        with pytest.raises(ValidationFailed) as err:
            check_levels(lo, hi)
        assert err.value.details[0]["field"] == field_name
    assert normalise_part_number(" pn-co2-ir-01 ") == "PN-CO2-IR-01"
    for bad in ("", "P", "-PN", "PN CO2", "PN#1", "X" * 65):
        with pytest.raises(ValidationFailed):
            normalise_part_number(bad)
    assert normalise_models(["Heal Force  HF90", "heal force hf90", "Biobase BJPX-C160"]) == [
        "Heal Force HF90", "Biobase BJPX-C160"]
    with pytest.raises(ValidationFailed):
        normalise_models(["ok", " "])
    assert fits_model(["Heal Force HF90"], "Heal Force", "HF90")
    assert fits_model(["Heal Force HF90"], "heal force", " hf90")
    assert not fits_model(["Heal Force HF90"], "Heal Force", "HF240")
    assert fits_model([], "Any", "Model")  # universal parts
    assert default_long_lead(21) and not default_long_lead(20)
