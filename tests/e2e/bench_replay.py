"""A counting replay of bench work in a real browser (issue 15): taps, keystrokes, scans, page
loads and signatures, as an operator, a verifier and QA spend them.

The replay acts as a careful person with a keyboard-wedge scanner would, and follows what the
page offers rather than a fixed script, so that the same replay measures today's pages and the
improved ones:

* a **scan** is ``page.keyboard.type(code)`` + Enter into the *focused* field; it is counted as
  one scan, not as keystrokes. A field is tapped (one tap) only when the focus is not already in
  it — a page that moves the focus to the next empty field saves that tap;
* **keystrokes** are the characters typed and every Enter or Tab pressed outside a scan; a date
  or date-time field is filled with its digits counted as keystrokes (the native pickers cannot
  be typed into reliably: issue 15, item 6);
* a **tap** is every tap the replay makes (fields, options, buttons, links);
* a **page load** is a navigation of the main frame (``framenavigated``);
* a **signature** is one signing dialog submitted. The dialog is filled with what it asks for:
  a badge field (``[data-badge]``, or a field named or labelled "badge") gets the person's badge
  scanned, a PIN field (``[data-pin]`` or named "pin") the PIN, a user ID field the user ID and
  a password field the password; when a badge was scanned, the user ID and password fields the
  dialog may still show as the alternative are left alone.

After every action the replay waits for what the action caused, by events: a form submitted or
a link followed (seen by a script in every page) → the next page has loaded; a ``fetch`` or
XMLHttpRequest started → it has ended. A screenshot of every page it lands on goes to
``test-artifacts/bench-<replay>-NNN-<title>.png`` (the viewport: what the person saw).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Marks, in every document of the main frame, that the page is being left (a form submitted or a
# link followed, not prevented by the page's own script) and how many requests of the page's
# script are in flight.
TRACKER = """
(() => {
  if (window.top !== window || window.__bench) { return; }
  window.__bench = { leaving: false, pending: 0 };
  const leave = () => { window.__bench.leaving = true; };
  window.addEventListener("beforeunload", leave);
  // Judged once every listener has run (the page's own may prevent the default later).
  const unless = (event, check) => setTimeout(() => { if (!event.defaultPrevented && check()) { leave(); } }, 0);
  window.addEventListener("submit", (event) => unless(event, () => true));
  window.addEventListener("click", (event) => {
    const link = event.target instanceof Element && event.target.closest("a[href]");
    unless(event, () => {
      if (!link || link.target || link.hasAttribute("download")) { return false; }
      const to = new URL(link.href, location.href);
      return to.pathname !== location.pathname || to.search !== location.search;
    });
  });
  const fetch = window.fetch;
  window.fetch = function (...args) {
    window.__bench.pending++;
    return fetch.apply(this, args).finally(() => { window.__bench.pending--; });
  };
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (...args) {
    window.__bench.pending++;
    this.addEventListener("loadend", () => { window.__bench.pending--; });
    return send.apply(this, args);
  };
})();
"""

SETTLED = """() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(() =>
  resolve(window.__bench ? { ...window.__bench } : { leaving: false, pending: 0 }), 0)))"""

BADGE_FIELD = "[data-badge], input[name*=badge i], input[id*=badge i]"
PIN_FIELD = "[data-pin], input[name*=pin i], input[id*=pin i]"
USER_FIELD = "input[name*=username i], input[autocomplete=username]"
PASSWORD_FIELD = "input[type=password]"
VISIBLE_INPUTS = "input:not([type=hidden]):not([type=checkbox]):not([type=radio]):visible"


@dataclass(frozen=True)
class Person:
    """Someone the replay signs as: user ID and password; badge code and PIN when enrolled."""

    username: str
    password: str
    badge: str | None = None
    pin: str | None = None


def people_from_demo_output(printed: str, passwords: dict[str, str]) -> dict[str, Person]:
    """The demo's people, with the badge code and PIN ``mes demo`` prints for each, if it does.

    Read from the table it prints (a header line naming ``badge`` and ``PIN`` columns, one
    fixed-width row per user ID), or from a line that starts with the user ID and says
    ``badge X`` and ``PIN 123456``; a person with neither has no badge.
    """
    lines = printed.splitlines()
    header = next(
        (h for h in lines if re.search(r"\sbadge\s{2,}", h) and re.search(r"\sPIN\s{2,}", h)),
        "",
    )
    people = {}
    for username, password in passwords.items():
        badge = pin = None
        for line in lines:
            if not re.match(rf"\s*{re.escape(username)}\s", line):
                continue
            if header:
                columns = _columns(header, line)
                badge, pin = columns.get("badge") or badge, columns.get("pin") or pin
            found_badge = re.search(r"badge(?: code)?[:=\s]+([A-Za-z0-9-]{3,})", line, re.I)
            found_pin = re.search(r"\bPIN[:=\s]+(\d{4,8})\b", line, re.I)
            badge = badge or (found_badge.group(1) if found_badge else None)
            pin = pin or (found_pin.group(1) if found_pin else None)
        people[username] = Person(username, password, badge or None, pin or None)
    return people


def _columns(header: str, row: str) -> dict[str, str]:
    """A fixed-width row's cells by the header's column names (lower case)."""
    starts = [(m.start(), m.group(0).lower()) for m in re.finditer(r"\S+(?: ID)?", header)]
    cells = {}
    for (start, name), following in zip(starts, [*starts[1:], (len(row) + 1, "")], strict=True):
        cells[name] = row[start : following[0]].strip()
    return cells


@dataclass
class Counts:
    """What a replay cost the person at the terminal."""

    taps: int = 0
    keystrokes: int = 0
    scans: int = 0
    page_loads: int = 0
    signatures: int = 0
    # of the keystrokes, those that are the observations themselves (values and dates typed):
    # what no design can spare the operator
    observed: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return asdict(self)


@dataclass
class Replay:
    """Counting hands on one browser tab. Counting starts with :meth:`count`."""

    page: Page
    name: str
    counts: Counts = field(default_factory=Counts)
    counting: bool = False
    pages_seen: int = 0
    _loads: int = 0  # every main-frame navigation, counted or not

    def __post_init__(self) -> None:
        self.page.context.add_init_script(TRACKER)
        self.page.evaluate(TRACKER)
        self.page.on("framenavigated", self._navigated)
        ARTIFACTS.mkdir(exist_ok=True)
        for old in ARTIFACTS.glob(f"bench-{self.name}-*.png"):
            old.unlink()

    def _navigated(self, frame) -> None:
        if frame == self.page.main_frame:
            self._loads += 1
            if self.counting:
                self.counts.page_loads += 1

    def count(self, name: str | None = None) -> Counts:
        """Start counting afresh (under a new name for the screenshots, if given)."""
        if name is not None:
            self.name, self.pages_seen = name, 0
            for old in ARTIFACTS.glob(f"bench-{name}-*.png"):
                old.unlink()
        self.counts = Counts()
        self.counting = True
        self.screenshot()
        return self.counts

    def pause(self) -> None:
        """Stop counting (set-up work nobody at the bench does)."""
        self.counting = False

    # -- waiting on what an action caused -----------------------------------------------------

    def settle(self, loads_before: int) -> None:
        """Wait until what the last action started has finished: a new page, or a request."""
        try:
            state = self.page.evaluate(SETTLED)
        except PlaywrightError:  # the document went away under the script: a navigation
            state = {"leaving": True, "pending": 0}
        if state["leaving"] or self._loads > loads_before:
            while self._loads == loads_before:
                self.page.wait_for_event(
                    "framenavigated", predicate=lambda f: f == self.page.main_frame
                )
            self.page.wait_for_load_state("load")
            self.page.evaluate(TRACKER)  # harmless if the init script already ran
            self.screenshot()
        elif state["pending"]:
            self.page.wait_for_function("() => !window.__bench || window.__bench.pending === 0")
            self.page.evaluate(SETTLED)

    def screenshot(self) -> None:
        """What the person sees now (the viewport), numbered in the order of the replay."""
        self.pages_seen += 1
        title = re.sub(r"[^a-z0-9]+", "-", self.page.title().lower()).strip("-")[:50]
        path = ARTIFACTS / f"bench-{self.name}-{self.pages_seen:03d}-{title or 'page'}.png"
        self.page.screenshot(path=str(path))

    # -- hands ----------------------------------------------------------------------------------

    def tap(self, target: Locator) -> None:
        """One tap on ``target``, then wait for what it caused."""
        before = self._loads
        target.tap()
        self.counts.taps += 1
        self.settle(before)

    def focus(self, target: Locator) -> None:
        """Tap the field only if the focus is not already in it."""
        if not target.evaluate("el => el === document.activeElement"):
            target.tap()
            self.counts.taps += 1

    def type(self, target: Locator, text: str) -> None:
        """Type ``text`` into the field (tapping it first if the focus is elsewhere)."""
        self.focus(target)
        target.evaluate(
            "el => el.select && el.select()"
        )  # replace what is there, as a person would
        self.page.keyboard.type(text)
        self.counts.keystrokes += len(text)

    def press(self, key: str) -> None:
        """One key (Enter, Tab) outside a scan."""
        before = self._loads
        self.page.keyboard.press(key)
        self.counts.keystrokes += 1
        self.settle(before)

    def scan(self, target: Locator, code: str) -> None:
        """The wedge scanner: the code's characters and Enter into the focused field."""
        self.focus(target)
        before = self._loads
        self.page.keyboard.type(code)
        self.page.keyboard.press("Enter")
        self.counts.scans += 1
        self.settle(before)

    def fill_date(self, target: Locator, iso: str) -> None:
        """A date or date-time: its digits typed (counted), the value set as the field wants it."""
        self.focus(target)
        kind = target.get_attribute("type") or "text"
        digits = re.sub(r"\D", "", iso)
        if kind in ("date", "datetime-local"):
            target.fill(iso)
        else:  # a text field in the site's format, as its placeholder shows (e.g. DD/MM/YYYY HH:MM)
            shown = date_as_placeholder(iso, target.get_attribute("placeholder") or "")
            target.evaluate("el => el.select && el.select()")
            self.page.keyboard.type(shown if shown != iso else iso)
            target.dispatch_event("change")
        self.counts.keystrokes += len(digits)

    # -- signing --------------------------------------------------------------------------------

    def open_dialog(self) -> Locator:
        """The signing dialog the last tap opened."""
        dialog = self.page.locator("dialog[open]").last
        expect(dialog).to_be_visible()
        return dialog

    def sign_in(self, where: Locator, person: Person) -> None:
        """Fill what the dialog (or log-in form) asks for, as ``person``, and submit it.

        A badge field gets the badge scanned; then the secret field gets the PIN, and the user
        ID field offered as the alternative is left alone. Without a badge: the user ID, and
        the PIN where the field asks for a PIN (its label says "PIN"), else the password.
        """
        before = self._loads
        used_badge = False
        done: set[str] = set()
        for _ in range(8):  # a dialog may show its PIN field only once the badge is read
            if self._loads > before:
                break
            fields = [f for f in where.locator(VISIBLE_INPUTS).all() if _key(f) not in done]
            if not fields:
                break
            target = fields[0]
            done.add(_key(target))
            label = target.evaluate(
                "el => Array.from(el.labels || []).map(l => l.innerText).join(' ')"
            )
            if _matches(target, BADGE_FIELD) or re.search(r"\bbadge\b", label, re.I):
                if person.badge and not used_badge:
                    self.scan(target, person.badge)
                    used_badge = True
            elif _matches(target, USER_FIELD):
                if not used_badge:
                    self.type(target, person.username)
            elif _matches(target, f"{PIN_FIELD}, {PASSWORD_FIELD}") or re.search(
                r"\bPIN\b|password", label, re.I
            ):
                wants_pin = used_badge or _matches(target, PIN_FIELD) or "PIN" in label
                self.type(target, person.pin if wants_pin and person.pin else person.password)
            elif target.evaluate("el => el.required"):
                raise AssertionError(f"the signing dialog asks for something unknown: {label}")
            # else: an optional field (a note): a person signing leaves it
        if self._loads == before and where.is_visible():
            self.tap(where.locator("button[type=submit]:visible").first)
        self.counts.signatures += 1

    def sign(self, opener: Locator, person: Person) -> None:
        """Tap the button that opens a signing dialog and sign in it."""
        self.tap(opener)
        self.sign_in(self.open_dialog(), person)
        refused = self.page.locator("[role=alert]:visible")
        if refused.count():
            raise AssertionError(f"{self.name}: signing was refused: {refused.all_inner_texts()}")


def _matches(target: Locator, selector: str) -> bool:
    return target.evaluate("(el, s) => el.matches(s)", selector)


def _key(target: Locator) -> str:
    return target.evaluate(
        "el => el.name || el.id || String([...document.querySelectorAll('input')].indexOf(el))"
    )


def date_as_placeholder(iso: str, placeholder: str) -> str:
    """``2026-05-17T09:30`` written as a placeholder like ``DD/MM/YYYY HH:MM`` shows it."""
    parts = re.match(r"(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d))?", iso)
    if not parts or "YYYY" not in placeholder.upper():
        return iso
    year, month, day, hour, minute = parts.groups()
    shown = placeholder.upper()
    for token, value in (("YYYY", year), ("MM", month), ("DD", day), ("HH", hour or "00")):
        shown = shown.replace(token, value, 1)
    return shown.replace("MM", minute or "00", 1)


# --- what a phase asks for --------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One thing a phase asks for: ``how`` is scan, type, date or choose; found by its label."""

    how: str
    label: str
    value: str


def scan(label: str, code: str) -> Entry:
    """A bar code scanned into the field labelled ``label``."""
    return Entry("scan", label, code)


def typed(label: str, text: str) -> Entry:
    """A value typed into the field labelled ``label``."""
    return Entry("type", label, text)


def dated(label: str, iso: str) -> Entry:
    """A date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM)."""
    return Entry("date", label, iso)


def chosen(label: str, option: str) -> Entry:
    """An option tapped in the choice labelled ``label``."""
    return Entry("choose", label, option)


def _field(page: Page, entry: Entry) -> Locator:
    if entry.how == "choose":
        group = page.get_by_role("radiogroup", name=entry.label)
        return group.locator("label").filter(
            has_text=re.compile(rf"^\s*{re.escape(entry.value)}\s*$")
        )
    return page.get_by_label(entry.label).locator("visible=true").first


def _done(page: Page, entry: Entry, entered: set[Entry]) -> bool:
    """Whether the page shows ``entry`` as entered (a refused scan is not)."""
    if entry.how == "choose":
        return _field(page, entry).locator("input").is_checked()
    target = page.get_by_label(entry.label).locator("visible=true")
    if entry.how == "scan":
        if not target.count():  # a matched label scan shows its result instead of a field
            return entry in entered
        return entry in entered and target.first.get_attribute("aria-invalid") != "true"
    return target.count() > 0 and (
        target.first.input_value() == entry.value
        or (entry.how == "date" and entry in entered and bool(target.first.input_value()))
    )


def enter_all(replay: Replay, entries: Iterable[Entry]) -> None:
    """Enter everything, in the order the page shows it, until the page shows all of it."""
    page = replay.page
    entries = list(entries)
    entered: set[Entry] = set()
    for _ in range(3 * len(entries) + 3):
        waiting = [e for e in entries if not _done(page, e, entered)]
        if not waiting:
            return
        # the next one down the page (a person works from the top)
        entry = min(
            waiting,
            key=lambda e: _field(page, e).evaluate(
                "el => el.getBoundingClientRect().top + window.scrollY"
            ),
        )
        target = _field(page, entry)
        if entry.how == "scan":
            replay.scan(target, entry.value)
        elif entry.how == "type":
            before = replay.counts.keystrokes
            replay.type(target, entry.value)
            replay.counts.observed += replay.counts.keystrokes - before
        elif entry.how == "date":
            before = replay.counts.keystrokes
            replay.fill_date(target, entry.value)
            replay.counts.observed += replay.counts.keystrokes - before
        else:
            replay.tap(target)
        entered.add(entry)
    raise AssertionError(f"{replay.name}: the page does not take {waiting} on {page.url}")


# --- the people's hands at set-up (not counted) ----------------------------------------------


def log_in_quietly(replay: Replay, url: str, person: Person) -> None:
    """Log in without counting (the session a panel already has when the replay starts)."""
    counting, replay.counting = replay.counting, False
    page = replay.page
    page.goto(f"{url}/login")
    page.get_by_label("User ID").fill(person.username)
    page.get_by_label("Password", exact=True).fill(person.password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").tap()
    expect(page.locator(".who .user")).to_be_visible()
    replay.counting = counting


def register_terminal(replay: Replay, url: str, admin: Person, name: str) -> None:
    """The administrator registers this browser as a terminal, then logs out (not counted)."""
    counting, replay.counting = replay.counting, False
    page = replay.page
    log_in_quietly(replay, url, admin)
    page.goto(f"{url}/admin/terminals")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name=re.compile("Register")).tap()
    expect(page.locator(".terminal.ok")).to_have_text(name)
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").tap()
    replay.counting = counting


# --- the three replays ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """A phase of the recipe as the replay does it: its name and what it asks for."""

    name: str
    entries: tuple[Entry, ...]
    verified: bool = False  # a second person verifies it


def on_phase(replay: Replay, name: str) -> bool:
    return replay.page.get_by_role("heading", level=1, name=name, exact=True).count() > 0


def go_to_phase(replay: Replay, name: str) -> None:
    """Get to the phase's page the way the page offers: a link to it, else via the batch."""
    page = replay.page
    if on_phase(replay, name):
        return
    link = page.get_by_role("link", name=name, exact=False).locator("visible=true")
    if not link.count():
        replay.tap(page.get_by_role("link", name="The whole batch"))
        link = page.get_by_role("link", name=name, exact=False).locator("visible=true")
    replay.tap(link.first)
    expect(page.get_by_role("heading", level=1, name=name, exact=True)).to_be_visible()


def perform_phase(replay: Replay, phase: Phase, performer: Person) -> None:
    """Open the phase, enter what it asks for and sign it performed.

    A ready phase shows its entry form beside "Start this phase": a person enters directly (the
    first entry starts the phase) and taps Start only where no form is shown.
    """
    page = replay.page
    go_to_phase(replay, phase.name)
    start = page.get_by_role("button", name="Start this phase")
    if start.count() and not page.locator("form[data-scan-form]").count():
        replay.tap(start)
    enter_all(replay, phase.entries)
    replay.sign(page.get_by_role("button", name="Sign performed"), performer)


def start_batch(replay: Replay, entries: Iterable[Entry], performer: Person) -> str:
    """On the start page with the recipe chosen: enter the chain of identity and sign."""
    enter_all(replay, entries)
    replay.sign(replay.page.get_by_role("button", name="Start the batch"), performer)
    return replay.page.locator(".batch-number").first.inner_text().strip()


def log_out_and_in(replay: Replay, person: Person) -> None:
    """Today's hand-over on a shared panel: log out, the next person logs in (counted)."""
    page = replay.page
    replay.tap(page.get_by_role("button", name="Log out"))
    form = page.locator("form", has=page.locator(PASSWORD_FIELD))
    signatures = replay.counts.signatures
    replay.sign_in(form, person)
    replay.counts.signatures = signatures  # logging in is not a signature
    expect(page.locator(".who .user")).to_be_visible()


def witness_control(page: Page) -> Locator | None:
    """The in-place witness signing the page offers, if any: a visible control marked
    ``[data-witness]``, or the button that opens a signing dialog marked ``[data-witness]``
    (the one named Verify first)."""
    controls = page.locator("[data-witness]:visible:not(dialog)")
    if not controls.count():
        controls = page.locator(":has(> dialog[data-witness]) > [data-esign-open]:visible")
    if not controls.count():
        return None
    verify = controls.filter(has_text=re.compile("verif", re.I))
    return verify.first if verify.count() else controls.first


def verify_on_the_same_panel(
    replay: Replay,
    phase_name: str,
    phase_url: str,
    batch_number: str,
    performer: Person,
    witness: Person,
) -> str:
    """A second person verifies the phase the performer has just signed, on her panel.

    In place when the phase page offers it (``[data-witness]``: the witness identifies in the
    dialog it opens; if the performer is elsewhere, she taps her way to the phase first);
    otherwise as today: the performer logs out, the witness logs in, finds the phase, verifies,
    logs out, and the performer logs in again and gets back to the batch. Returns which.
    """
    page = replay.page
    control = witness_control(page)
    if control is None and "data-witness" in page.request.get(phase_url).text():
        go_to_phase(replay, phase_name)  # the phase page offers it: go there
        control = witness_control(page)
    if control is not None:
        replay.tap(control)
        dialog = replay.open_dialog()
        toggle = dialog.locator("label:has([data-witness-toggle])")  # "sign as another person"
        if toggle.count() and not toggle.locator("input").is_checked():
            replay.tap(toggle)
        replay.sign_in(dialog, witness)
        expect(page.locator("[role=alert]:visible")).to_have_count(0)
        return "in place"
    log_out_and_in(replay, witness)
    replay.tap(page.get_by_role("link", name="Batches", exact=True).first)
    link = page.get_by_role("link", name=phase_name).locator("visible=true")
    if not link.count():
        replay.tap(page.get_by_role("link", name=batch_number).first)
        link = page.get_by_role("link", name=phase_name).locator("visible=true")
    replay.tap(link.first)
    replay.sign(page.get_by_role("button", name="Verify", exact=True), witness)
    log_out_and_in(replay, performer)
    replay.tap(page.get_by_role("link", name="Batches", exact=True).first)
    replay.tap(page.get_by_role("link", name=batch_number).first)
    return "log out and in"


def reviewable_categories(page: Page) -> list[str]:
    """The categories, in page order, with an exception QA can mark reviewed."""
    return page.locator("[data-category]").evaluate_all(
        """groups => groups
            .filter(g => g.querySelector('form.review-form, input[type=checkbox]:not(:checked)'))
            .map(g => g.dataset.category)"""
    )


def review_categories(replay: Replay, categories: list[str], qa: Person) -> None:
    """Mark every exception of the categories reviewed: with one signature when the page
    offers a bulk review (``[data-bulk-review]``: tick each, sign once), else one by one."""
    page = replay.page
    bulk = page.locator("[data-bulk-review]")
    if bulk.count():
        for category in categories:
            boxes = page.locator(f"[data-category='{category}'] input[type=checkbox]")
            for box in boxes.all():
                if not box.is_checked():
                    replay.tap(box)
        replay.sign(bulk.first.locator("[data-esign-open]").first, qa)
        return
    for category in categories:
        forms = page.locator(f"[data-category='{category}'] form.review-form")
        while forms.count():
            form = forms.first
            replay.sign(form.get_by_role("button", name="Mark reviewed"), qa)
