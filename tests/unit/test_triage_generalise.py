"""Structural triage rules on wordings that appear in neither evaluation set (written for these tests).

Each case is one of the labelling rules of ``data/triage/README.md`` said in a different way, so the tests
check that a rule holds for the family of wordings, not only for the examples it was written from.
"""

from __future__ import annotations

import pytest

from incucare.adapters.kb.evalset import cross_validate
from incucare.adapters.kb.taxonomy import load_taxonomy, parse_taxonomy, shipped_taxonomy_data
from incucare.domain.triage import TriageContext, ngram_features, triage

TAX = load_taxonomy()


@pytest.mark.parametrize(("text", "category", "tier"), [
    # a cylinder found empty or closed and fixed by changing or opening it → gas supply, remote
    ("钢瓶没气了 换了一瓶就好了", "gas_supply", 1),
    ("co2 alarm, found the cylinder empty, swapped it and its recovering", "gas_supply", 1),
    ("co2低报警 原来是总阀没开 打开后恢复了", "gas_supply", 1),
    ("co2 bottle empties in 3 days, used to last 3 weeks", "gas_supply", 2),
    # an analyser that agrees with the display → control; one that disagrees → sensor
    ("co2 sits at 7-8% even though set to 5, we checked with a handheld meter and it agrees", "co2_control", 2),
    ("显示co2 5.0 但用手持式测了才3.9", "co2_sensor", 2),
    ("co2 value frozen at 4.8 no matter what we do", "co2_sensor", 2),
    # alarms that stopped by themselves, door left open, warm-up, cold load → false alarm; slow recovery is real
    ("开门放了一下东西 温度报警 十分钟后自己好了", "false_alarm", 1),
    ("alarm beeped for a minute when we loaded a stack of cold plates, fine now", "false_alarm", 1),
    ("停电来电后报了一阵温度低 现在37了 不用管吧", "false_alarm", 1),
    ("co2 recovery after door opening now takes 40 min, used to be 8", "co2_control", 2),
    # a repeat after a visit → HQ, category stays technical
    ("the temp probe was replaced by your guy last week and now it is off again", "temperature_control", 3),
    ("上个月工程师刚换的门封 现在又漏气了", "door_seal", 3),
    # scheduling installation, PM, OQ → installation_pm on site; documents remote
    ("想约一下年度保养 下个月哪天方便", "installation_pm", 2),
    ("we'd like to book an engineer for the annual PM and IQ/OQ", "installation_pm", 2),
    ("麻烦发一份出厂校准证书", "installation_pm", 1),
    # data lost or not exportable, clocks, freezes fixed by a restart → firmware, HQ
    ("历史数据查不到了 上个月的全没了", "firmware_software", 3),
    ("导出的温度记录全是乱码", "firmware_software", 3),
    ("the clock resets to 2000 every time after power off", "firmware_software", 3),
    ("控制器隔几天就卡住不动 拔电再插上才好", "firmware_software", 3),
    # screen only vs no power at all
    ("screen went all white, unit still heating fine", "display_touch", 2),
    ("显示屏有一半是黑的", "display_touch", 2),
    ("插上电源没有任何反应 指示灯都不亮", "electrical_mainboard", 2),
    # O2 is not CO2 (二氧化碳 contains 氧)
    ("低氧箱氧浓度一直偏高 氮气瓶是满的", "o2_control", 2),
    ("培养箱的二氧化碳老是达不到设定值 气瓶刚换的满瓶", "co2_control", 2),
    # water: dripping onto the bench is a leak, condensation inside gets advice
    ("water dripping from the bottom of the door onto the bench", "humidity_water", 2),
    ("箱壁上好多水珠 是不是湿度太高", "humidity_water", 1),
    # service complaints
    ("报修一周了还没人来 打电话也没人回", "quality_claim", 3),
    # more indirect wordings
    ("The gas tank ran dry over the weekend, we replaced it this morning. CO2 back up to 5% now.", "gas_supply", 1),
    ("the incubator is cooking our cells, display says 42C", "temperature_control", 2),
    ("夜里报了一次co2低 查了记录 那会儿正好有人开门取东西 现在好好的", "false_alarm", 1),
    ("the door alarm keeps sounding even when the door is shut tight", "door_seal", 2),
    ("unit keeps tripping the lab's RCD", "electrical_mainboard", 2),
    ("屏幕卡在开机logo那里进不去", "firmware_software", 3),
    ("湿度上不去 水盘里水是够的", "humidity_water", 2),
    ("There's fungus growing on the door gasket", "contamination", 2),
    ("we need the IQ/OQ documentation for our audit", "installation_pm", 1),
    ("the auto changeover isn't kicking in when the first tank empties", "gas_supply", 2),
])
def test_rule_families(text, category, tier):
    result = triage(text, TriageContext(), TAX)
    assert (result.category.key, int(result.tier)) == (category, tier), result.evidence


@pytest.mark.parametrize("text", ["机器后面有股电线烧着的味道", "闻到一股烧焦的味道 从背面传出来",
                                  "we smelled something like burning rubber near the incubator",
                                  "some smoke came out the back vent"])
def test_smoke_or_burning_in_any_wording_is_electrical_and_critical(text):
    result = triage(text, TriageContext(), TAX)
    assert (result.category.key, result.priority.value) == ("electrical_mainboard", "critical"), result.evidence


def test_model_explains_itself_and_can_be_left_out():
    result = triage("显示瓶黑了一半 数字看不全", TriageContext(), TAX)
    model = [e for e in result.evidence if e.kind == "model"]
    assert model and model[0].zh and model[0].en and "n-gram" in model[0].en
    bare = parse_taxonomy(shipped_taxonomy_data(), model=False)
    assert not [e for e in triage("温度上不去", TriageContext(), bare).evidence if e.kind == "model"]


def test_features_fold_width_and_keep_word_prefixes():
    feats = ngram_features("ＣＯ２ 浓度 alarmming")
    assert {"浓度", "w:co2", "w:alarmming", "p:alar"} <= feats


def test_engine_is_deterministic():
    text = "co2 alarm, found the cylinder empty, swapped it"
    first = triage(text, TriageContext(), TAX).as_dict()
    assert all(triage(text, TriageContext(), TAX).as_dict() == first for _ in range(3))


def test_cross_validation_model_does_not_hurt():
    cv = cross_validate(5)
    assert cv["with_model"]["category"] >= cv["rules_only"]["category"] - 0.5
    assert cv["with_model"]["tier"] >= 95.0
