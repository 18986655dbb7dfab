"""Signing in through the login form in Chromium, as a user does (the Chinese labels of the default language)."""

from __future__ import annotations

from tests.world import PASSWORD


def sign_in(page, base: str, username: str) -> None:
    """Fill and submit the login form at ``base`` and wait for the landing page to load."""
    page.goto(f"{base}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()
