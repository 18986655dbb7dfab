"""Logging out is a form post like any other: without the session's CSRF token it is refused (another site
cannot log a user out behind their back). On SQLite and PostgreSQL."""

from __future__ import annotations

import re

from tests.network import csrf_of, login_landing


def test_the_logout_form_carries_the_token_and_a_forged_logout_is_refused(client):
    html = login_landing(client, "agent")
    form = re.search(r'<form method="post" action="/logout".*?</form>', html, re.S).group(0)
    token = csrf_of(html)
    assert f'name="csrf" value="{token}"' in form

    for data in ({}, {"csrf": "forged"}):
        r = client.post("/logout", data=data, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
    still = client.get("/tickets", follow_redirects=False)
    assert still.status_code == 200 and 'data-testid="who"' in still.text  # still logged in
    assert "页面已过期,请刷新后重试" in still.text  # the refusal is flashed

    r = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    gone = client.get("/tickets", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
