"""Every route of both roles answers generated bad input with a 4xx or a page, never a 5xx.

The hub and spoke SPK1 run on real databases (SQLite and PostgreSQL) with a real batch recorded
at the spoke and received at the hub, so pages reach their deep paths with real IDs. For each
role the test logs in one browser per role held there (plus an anonymous one), walks the site
from its start page to find every link and form as a user would, then sends to **every route of
the app's URL map**:

- every query parameter a page's form or the code reads, and every field of every form posting
  to it (with a valid CSRF token), set to values from a list of known troublemakers — Unicode
  digits (``²`` passes ``str.isdigit()`` but not ``int()``), 5,000-digit numbers, far dates,
  NUL and other control characters, long text — and to values Hypothesis generates;
- path parameters replaced by the same values;
- 100,000-deep JSON bodies, anonymous and signed with the spoke's key (the sync API).

Any 5xx or traceback fails the test, naming the request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recipe_driver import begin
from review_network import batch_at_the_hub, hub_client, spoke_app
from support import PASSWORD
from sync_sites import CLI, net, recipe_file
from web_helpers import login
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from mes.services.users import add_user

__all__ = ["net"]  # the fixture, imported from sync_sites

DEEP = 100_000
TROUBLE = [
    "²",  # isdigit() but not int()
    "٣",  # an Arabic-Indic digit: int() takes it
    "\U0001d7d7",  # a mathematical bold digit nine
    "1" * 5000,  # past Python's int-from-text limit
    "9" * 40,  # past every database's integer
    "-1",
    "0",
    "1e999999",
    "NaN",
    "-inf",
    "9999-12-31",
    "0001-01-01",
    "10000-01-01",
    "2026-02-30",
    "2026-12-05T25:61",
    "\x00",
    "a\x00b",
    "\r\n\f\v",
    "\x1b[2J",
    "\u202e\u2028",
    "\ud7ff\ufffe",
    "x" * 3000,
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "../../../etc/passwd",
    "%",
    "",
    " ",
    "[]",
]
SKIP_ENDPOINTS = {"static", "logout", "lock"}  # would end the browser's session
SLOW_ENDPOINTS = ("record.pdf", "record_pdf", "download")  # lays out a signed PDF: sent once


# --- what a browser finds on the pages -------------------------------------------------------


@dataclass
class Form:
    """A form as a page shows it: where it posts and the names (and a value) of its fields."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _Page(HTMLParser):
    """The links and forms of one page."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self._form = Form(a.get("action") or self.url, (a.get("method") or "get").lower())
            self.forms.append(self._form)
        elif tag in ("input", "select", "textarea", "button") and self._form and a.get("name"):
            self._form.fields.setdefault(a["name"], a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def _local(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("", "http") or parts.netloc not in ("", "localhost"):
        return None
    if not parts.path.startswith("/"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class Site:
    """What a walk of one app found: pages (GET URLs) and forms, per logged-in browser."""

    pages: set[str] = field(default_factory=set)
    forms: list[Form] = field(default_factory=list)


def walk(client: FlaskClient, start: Iterable[str], limit: int = 120) -> Site:
    """Follow every same-site link from ``start`` (breadth first, at most ``limit`` pages)."""
    site = Site()
    todo = list(start)
    while todo and len(site.pages) < limit:
        url = todo.pop(0)
        if url in site.pages or any(s in url for s in SLOW_ENDPOINTS):
            continue
        site.pages.add(url)
        response = checked(client.get(url), "GET", url)
        if response.mimetype != "text/html":
            continue
        page = _Page(url)
        page.feed(response.get_data(as_text=True))
        site.forms.extend(page.forms)
        for link in page.links:
            target = _local(link)
            if target and target not in site.pages:
                todo.append(target)
    return site


# --- the answers ---------------------------------------------------------------------------


def checked(response: TestResponse, method: str, url: str, what: str = "") -> TestResponse:
    """Fail on a 5xx or a traceback, naming the request."""
    body = response.get_data().decode("utf-8", "replace")
    where = f"{method} {url[:300]} {what[:300]}"
    assert response.status_code < 500, f"{response.status_code} for {where}:\n{body[:2000]}"
    assert "Traceback" not in body, where
    return response


def token(client: FlaskClient) -> str:
    """A CSRF token of this browser's session (from the public login page)."""
    page = client.get("/login").get_data(as_text=True)
    found = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page)
    return found.group(1) if found else ""


# --- the URL map ------------------------------------------------------------------------------


def rules_of(app: Flask) -> list[Rule]:
    return [r for r in app.url_map.iter_rules() if r.endpoint.split(".")[-1] not in SKIP_ENDPOINTS]


def real_urls(app: Flask, rule: Rule, site: Site) -> list[str]:
    """The URLs a walk found for ``rule`` (real IDs), or one built from placeholder values."""
    adapter = app.url_map.bind("localhost")
    found = []
    for url in sorted(site.pages | {f.action for f in site.forms}):
        try:
            endpoint, _ = adapter.match(urlsplit(url).path, method=next(iter(rule.methods)))
        except Exception:  # not this rule's URL
            continue
        if endpoint == rule.endpoint:
            found.append(urlsplit(url).path)
    if found:
        return found[:2]
    values = {arg: "0" for arg in rule.arguments}
    return [adapter.build(rule.endpoint, values, force_external=False)]


def with_path_value(app: Flask, rule: Rule, value: str) -> str | None:
    """The rule's URL with every path parameter set to ``value`` (None if it cannot be built)."""
    if not rule.arguments or not value.strip("/"):
        return None
    try:
        return app.url_map.bind("localhost").build(
            rule.endpoint, dict.fromkeys(rule.arguments, value)
        )
    except Exception:  # a converter refuses it: nothing to send
        return None


def query_names(site: Site) -> set[str]:
    """Every query parameter a GET form offers, and those the views read from request.args."""
    names = {n for f in site.forms if f.method == "get" for n in f.fields}
    source = Path(__file__).parents[2] / "mes" / "web"
    for path in source.rglob("*.py"):
        names |= set(re.findall(r'request\.(?:args|values)\.get\("(\w+)"', path.read_text()))
    return names - {"csrf_token"}


# --- the fuzzing ------------------------------------------------------------------------------


@dataclass
class Browsers:
    """One logged-in browser per role at the site (and an anonymous one), and what each found."""

    app: Flask
    clients: dict[str, FlaskClient]
    sites: dict[str, Site]
    queries: set[str]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def site(self) -> Site:
        """What all of them found."""
        every = Site()
        for found in self.sites.values():
            every.pages |= found.pages
            every.forms.extend(found.forms)
        return every

    def reaching(self, rule: Rule) -> list[str]:
        """The browsers whose walk found the rule's page or form (else anonymous and the first)."""
        found = [
            who
            for who, site in self.sites.items()
            if any(
                _matches(self.app, rule, url) for url in site.pages | {f.action for f in site.forms}
            )
        ]
        return ["anonymous", *found] if found else ["anonymous", next(iter(self.sites))]

    def send_get(self, who: str, path: str, params: dict[str, str]) -> None:
        url = f"{path}?{urlencode(params)}" if params else path
        checked(self.clients[who].get(url), "GET", url, who)

    def send_post(self, who: str, path: str, form: dict[str, str]) -> None:
        if who not in self.tokens:
            self.tokens[who] = token(self.clients[who])
        data = {**form, "csrf_token": self.tokens[who]}
        checked(self.clients[who].post(path, data=data), "POST", path, f"{who} {form!r}")

    def fields_for(self, path: str) -> dict[str, str]:
        forms = [f.fields for f in self.site.forms if f.method == "post" and f.action == path]
        fields = {k: v for f in forms for k, v in f.items() if k != "csrf_token"}
        return fields or {"reason": "", "note": "", "password": "", "esign_password": ""}


def _matches(app: Flask, rule: Rule, url: str) -> bool:
    try:
        endpoint, _ = app.url_map.bind("localhost").match(
            urlsplit(url).path, method=next(iter(rule.methods - {"HEAD", "OPTIONS"}))
        )
    except Exception:  # not this rule's URL
        return False
    return endpoint == rule.endpoint


SIGNING_VALUES = set(TROUBLE[:4])  # sent with the right password, to reach the services


def _passwords(fields: dict[str, str], value: str) -> dict[str, str]:
    """Every field set to ``value``, but user IDs (left empty: the session's user signs) and
    passwords: right for the first few values (so the service judges the values; argon2 costs
    ~30 ms), empty for the others (the form refuses before any password is checked)."""
    out = {}
    for name in fields:
        if "password" in name:
            out[name] = PASSWORD if value in SIGNING_VALUES else ""
        elif name in ("username", "esign_username"):
            out[name] = ""
        else:
            out[name] = value
    return out


def sweep(browsers: Browsers) -> int:
    """Every route × every troublemaker, in query, form and path; the number of requests sent."""
    sent = 0
    app = browsers.app
    site = browsers.site
    deep = ("[" * DEEP + "]" * DEEP).encode()
    for rule in rules_of(app):
        slow = any(s in rule.rule or s in rule.endpoint for s in SLOW_ENDPOINTS)
        values = TROUBLE[:3] if slow else TROUBLE
        paths = real_urls(app, rule, site)
        for who in browsers.reaching(rule):
            client = browsers.clients[who]
            for path in paths:
                if "POST" in rule.methods:
                    checked(client.post(path, data=deep, content_type="application/json"),
                            "POST deep JSON", path, who)  # fmt: skip
                    sent += 1
                for value in values:
                    if "GET" in rule.methods:
                        browsers.send_get(who, path, dict.fromkeys(browsers.queries, value))
                        sent += 1
                    if "POST" in rule.methods:
                        browsers.send_post(who, path, _passwords(browsers.fields_for(path), value))
                        sent += 1
        who = browsers.reaching(rule)[-1]  # path parameters: as one browser that reaches it
        for value in values:
            target = with_path_value(app, rule, quote(value, safe=""))
            for method in rule.methods & {"GET", "POST"} if target else ():
                checked(browsers.clients[who].open(target, method=method), method, target, who)
                sent += 1
    return sent


def fuzz_with_hypothesis(browsers: Browsers, examples: int) -> None:
    """Generated values (any Unicode, huge numbers, far dates) in every parameter and field."""
    rules = rules_of(browsers.app)
    site = browsers.site
    slow = [r for r in rules if any(s in r.rule or s in r.endpoint for s in SLOW_ENDPOINTS)]
    rules = [r for r in rules if r not in slow]
    values = st.one_of(
        st.text(max_size=60),
        st.integers(min_value=-(10**400), max_value=10**400).map(str),
        st.dates(min_value=__import__("datetime").date(1, 1, 1)).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(alphabet=st.characters(categories=["Nd", "No", "Cc", "Cf", "Zl", "Zp"])),
        st.sampled_from(TROUBLE),
    )

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        rule=st.sampled_from(rules),
        who=st.sampled_from(sorted(browsers.clients)),
        value=values,
        data=st.data(),
    )
    def one(rule: Rule, who: str, value: str, data: st.DataObject) -> None:
        client = browsers.clients[who]
        path = data.draw(st.sampled_from(real_urls(browsers.app, rule, site)))
        if "GET" in rule.methods:
            names = data.draw(st.sets(st.sampled_from(sorted(browsers.queries)), max_size=4))
            browsers.send_get(who, path, dict.fromkeys(names, value))
        if "POST" in rule.methods:
            fields = browsers.fields_for(path)
            chosen = data.draw(st.sets(st.sampled_from(sorted(fields)), min_size=1))
            form = {k: (value if k in chosen else v) for k, v in fields.items()}
            browsers.send_post(who, path, form)
        target = with_path_value(browsers.app, rule, quote(value, safe=""))
        if target:
            method = "GET" if "GET" in rule.methods else "POST"
            checked(client.open(target, method=method), method, target)

    one()


def browsers_of(app: Flask, people: dict[str, str], start: list[str]) -> Browsers:
    """Log one browser in as each of ``people`` (role → user ID); walk the site as each."""
    from web_helpers import client_of

    clients: dict[str, FlaskClient] = {"anonymous": client_of(app)}
    sites: dict[str, Site] = {}
    for role, username in people.items():
        client = client_of(app)
        assert login(client, username).status_code == 302, username
        clients[role] = client
        sites[role] = walk(client, start)
    every = Site()
    for found in sites.values():
        every.forms.extend(found.forms)
    return Browsers(app, clients, sites, query_names(every))


# --- the sync API, signed ---------------------------------------------------------------------


def signed_api_fuzz(net, hub: Flask) -> int:
    """Deep and malformed JSON, signed with the enrolled spoke's key, to every API route."""
    client = hub_client(net, hub)
    sent = 0
    api_rules = [r for r in hub.url_map.iter_rules() if r.rule.startswith("/api/")]
    bodies = [
        ("[" * DEEP + "]" * DEEP).encode(),
        ('{"known":' * DEEP + "{}" + "}" * DEEP).encode(),
        b'{"known": {"x": 1e999999}}',
        b'{"known": {"' + "²".encode() + b'": "\xc2\xb2"}}',
        b"\xff\xfe",
        json.dumps({"known": {"A" * 5000: 10**400}}).encode(),
    ]
    for rule in api_rules:
        path = rule.rule.removeprefix("/api/v1")
        if "<" in path:
            path = re.sub(r"<[^>]+>", "0", path)
        for body in bodies:
            for method in rule.methods & {"GET", "POST"}:
                response = client.request(method, path, body, "application/json")
                assert response.status_code < 500, (method, path, body[:60], response.text[:500])
                sent += 1
    return sent


# --- the tests --------------------------------------------------------------------------------


@pytest.fixture
def recorded(net, tmp_path) -> str:
    """A batch run at SPK1 and received at the hub, and a second one in progress at the spoke."""
    site = net.connected()
    path = recipe_file(tmp_path)
    second = begin(site, path)
    done: list[str] = []
    second.run_until(lambda phase: done.append(phase) or len(done) > 2)  # in progress
    site.connected = lambda: site  # batch_at_the_hub sets the network up: it is set up
    net.connected = lambda: site
    return batch_at_the_hub(net, tmp_path)


def _admin(uow_factory) -> str:
    with uow_factory() as uow:
        return add_user(
            uow, CLI, username="ada", full_name="Ada Admin", roles=["admin"], password=PASSWORD
        )


def test_no_route_of_the_hub_answers_generated_input_with_a_server_error(net, recorded, make_app):
    _admin(net.hub)
    hub = make_app("hub")
    people = {"author": "aaron", "supervisor": "sam", "qa": "quinn", "admin": "ada"}
    browsers = browsers_of(hub, people, ["/", "/qa/", "/network/", "/recipes/", "/admin/"])
    assert len(browsers.site.pages) > 20, sorted(browsers.site.pages)
    assert sweep(browsers) > 1000
    fuzz_with_hypothesis(browsers, examples=150)
    assert signed_api_fuzz(net, hub) > 10


def test_no_route_of_the_spoke_answers_generated_input_with_a_server_error(net, recorded):
    _admin(net.spoke_uow)
    spoke = spoke_app(net)
    people = {"operator": "olivia", "supervisor": "sam", "qa": "quinn", "admin": "ada"}
    browsers = browsers_of(spoke, people, ["/", "/batches", "/admin/"])
    assert len(browsers.site.pages) > 10, sorted(browsers.site.pages)
    assert sweep(browsers) > 500
    fuzz_with_hypothesis(browsers, examples=150)
