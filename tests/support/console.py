"""The admin console as a browser without JavaScript uses it: forms with their CSRF token."""

from __future__ import annotations

import re

import aiohttp

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def login(
    session: aiohttp.ClientSession, url: str, name: str, password: str, next_page: str = "/admin"
) -> aiohttp.ClientResponse:
    """Open the login page (for its token and cookie), post the form; the response is not
    followed, so callers see the redirect (or the refusal)."""
    async with session.get(f"{url}/admin/login") as page:
        token = csrf_of(await page.text())
    response = await session.post(
        f"{url}/admin/login",
        data={"csrf": token, "name": name, "password": password, "next": next_page},
        allow_redirects=False,
    )
    await response.read()
    return response


async def page_csrf(session: aiohttp.ClientSession, url: str, path: str) -> str:
    async with session.get(f"{url}{path}") as page:
        assert page.status == 200, page.status
        return csrf_of(await page.text())
