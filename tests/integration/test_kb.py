"""Knowledge-base search through the API, in both languages."""

from __future__ import annotations


def test_search_finds_the_right_article_in_chinese_and_english(client, login):
    h = login("customer")  # customers search before they report (deflection)
    r = client.get("/api/v1/kb/search", headers=h, params={"q": "开门后CO2报警"})
    assert r.status_code == 200 and r.json()["items"][0]["id"] == "kb-001"
    r = client.get("/api/v1/kb/search", headers={**h, "Accept-Language": "en"},
                   params={"q": "touch screen not responding"})
    top = r.json()["items"][0]
    assert top["id"] == "kb-020" and top["title"] == top["title_en"]
    assert client.get("/api/v1/kb/search", headers=h, params={"q": "培养箱有焦味"}).json()["items"][0]["id"] == "kb-025"


def test_articles_and_errors(client, login):
    h = login("agent")
    r = client.get("/api/v1/kb/articles/kb-004", headers=h)
    assert r.status_code == 200 and r.json()["body_zh"] and r.json()["body_en"]
    assert client.get("/api/v1/kb/articles/kb-999", headers=h).status_code == 404
    assert client.get("/api/v1/kb/search", headers=h, params={"q": ""}).status_code == 422
    assert client.get("/api/v1/kb/search", params={"q": "x"}).status_code == 401
    assert client.get("/api/v1/kb/search", headers=h, params={"q": "的了吗"}).json()["total"] == 0
