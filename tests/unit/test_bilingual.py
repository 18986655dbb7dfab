"""Generated text stored in both languages and read in one; old rows (one string holding "中文 / English",
or an English-only fixed note) stay readable."""

from __future__ import annotations

import re

from incucare.domain.bilingual import bilingual, split_bilingual, text_in
from incucare.web.i18n import translate


def test_the_stored_pair_is_read_in_each_language() -> None:
    stored = bilingual("首响超时,升级至值班主管", "first response missed: duty supervisor takes over")
    assert text_in(stored, "zh") == "首响超时,升级至值班主管"
    assert text_in(stored, "en") == "first response missed: duty supervisor takes over"


def test_old_rows_fall_back_gracefully() -> None:
    old = "首响超时,升级至值班主管 / first response missed: duty supervisor takes over"
    assert text_in(old, "zh") == "首响超时,升级至值班主管"
    assert text_in(old, "en") == "first response missed: duty supervisor takes over"
    assert (text_in("previous owner", "zh"), text_in("previous owner", "en")) == ("原责任人", "previous owner")
    assert text_in("只有中文的旧记录", "en") == "只有中文的旧记录"  # nothing to pick from: shown as stored
    assert text_in(None, "zh") == ""


def test_text_people_typed_is_left_alone() -> None:
    typed = "温度报警 / 5.2%"
    assert text_in(typed, "en", legacy_split=False) == typed
    assert split_bilingual('{"zh": 1}') is None and text_in("{not json}", "en") == "{not json}"
    assert text_in("CO2 / O2 readings fine", "zh") == "CO2 / O2 readings fine"  # no Chinese half: not a pair


def test_the_survey_heading_is_one_language_per_page() -> None:
    assert not re.search(r"[A-Za-z]", translate("zh", "survey.rate"))
    assert not re.search(r"[\u4e00-\u9fff]", translate("en", "survey.rate"))
