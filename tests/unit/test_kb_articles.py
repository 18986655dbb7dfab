"""The shipped knowledge base parses and covers every fault category in both languages."""

from __future__ import annotations

import json
from importlib import resources

from incucare.adapters.kb.articles import load_articles, parse_article


def test_every_article_is_bilingual_and_categorised():
    articles = load_articles()
    taxonomy = json.loads(resources.files("incucare").joinpath("data/triage/taxonomy.json").read_text("utf-8"))
    categories = {c["key"] for c in taxonomy["categories"]}
    assert len(articles) >= 40
    assert len({a.id for a in articles}) == len(articles)
    for a in articles:
        assert a.category in categories, a.id
        assert len(a.body_zh) > 300 and len(a.body_en.split()) > 150, a.id
    assert {a.category for a in articles} == categories  # every fault category has an article


def test_front_matter_lists_and_comments():
    a = parse_article("---\nid: kb-x\ntitle_zh: 标题\ntitle_en: Title\ncategory: false_alarm  # c\ntier: 1\n"
                      "keywords_zh: [开门, 报警]\nkeywords_en: []\n---\n## 中文\n内容\n## English\nText\n")
    assert (a.category, a.keywords_zh, a.keywords_en, a.body_zh, a.body_en) == (
        "false_alarm", ("开门", "报警"), (), "内容", "Text")
