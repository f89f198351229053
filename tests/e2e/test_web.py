"""The web page in headless Chromium against the whole local stack.

Each test signs in its own users. Screenshots of the main states go to
test-artifacts/screenshots/ (look at them: the page should look usable).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from local.azurite import Azurite

from .conftest import ARTIFACTS
from .stack import Stack, expected_text, local_stack
from .web_browser import PageDriver, chromium

pytestmark = pytest.mark.e2e

PACED = "[[emulator tokens=80 rate=40 ttft_ms=0]]"
SLOW = "[[emulator tokens=160 rate=40 ttft_ms=0]]"
FAST = "[[emulator tokens=30 rate=300 ttft_ms=0]]"
JOBS_PER_MINUTE = 3

# Counts the delta messages that reach a page, per job (the page dispatches `relay:delta`).
_COUNT_DELTAS = """
window.__deltas = {};
window.addEventListener("relay:delta", (e) => {
  const id = e.detail && e.detail.jobId;
  window.__deltas[id] = (window.__deltas[id] || 0) + 1;
});
"""


@pytest.fixture(scope="module")
def web(azurite: Azurite) -> Iterator[Stack]:
    log = ARTIFACTS / "web-host.log"
    with local_stack(
        azurite.connection_string, log, USER_JOBS_PER_MINUTE=str(JOBS_PER_MINUTE)
    ) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def person(web: Stack, browser: Browser) -> Iterator[callable]:  # type: ignore[valid-type]
    opened: list[PageDriver] = []

    def make(**ctx: object) -> PageDriver:
        driver = PageDriver(browser, web.base, **ctx)
        driver.page.add_init_script(_COUNT_DELTAS)
        opened.append(driver)
        return driver

    yield make
    for driver in opened:
        assert driver.errors == [], driver.errors
        driver.close()


def _deltas(driver: PageDriver, job_id: str) -> int:
    return int(driver.page.evaluate("id => window.__deltas[id] || 0", job_id))


def test_answer_grows_live_and_ends_with_the_expected_text(person, web: Stack) -> None:
    ann = person()
    ann.open().sign_in("web-ann")
    ann.shot("01-signed-in")
    prompt = f"Tell me about rivers. {PACED}"
    expected = expected_text(prompt)
    job_id = ann.ask_job(prompt)
    seen: list[str] = []
    ann.wait_for(lambda: seen.append(ann.text()) or len(seen[-1]) > len(expected) // 3, 20)
    ann.shot("02-streaming")
    ann.wait_text(expected)
    ann.shot("03-completed")
    lengths = sorted({len(t) for t in seen if t})
    assert len(lengths) >= 2, "the text should grow while the answer streams"
    assert all(expected.startswith(t) for t in seen)
    metrics = ann.page.text_content("#metrics") or ""
    assert "first token" in metrics and "tokens" in metrics and "received live" in metrics
    assert ann.job_id() == job_id
    assert _deltas(ann, job_id) > 1
    assert ann.page.locator(f"#jobs li[data-job='{job_id}']").count() == 1


def test_conversation_sends_the_earlier_turns(person, web: Stack) -> None:
    bo = person()
    bo.open().sign_in("web-bo")
    sent: list[dict[str, object]] = []
    bo.page.on("request", lambda r: sent.append(r.post_data_json)
               if r.method == "POST" and r.url.endswith("/api/jobs") else None)  # fmt: skip
    first = f"Name a river. {FAST}"
    bo.ask_job(first)
    bo.wait_text(expected_text(first))
    second = f"And a lake? {FAST}"
    bo.ask_job(second)
    bo.wait_status("completed")
    assert sent[0] == {"prompt": first}
    assert sent[1] == {"messages": [
        {"role": "user", "content": first},
        {"role": "assistant", "content": expected_text(first)},
        {"role": "user", "content": second},
    ]}  # fmt: skip
    assert bo.page.locator("#turns li").count() == 2
    bo.shot("03b-conversation")
    bo.page.reload()  # the conversation survives a reload
    bo.wait_connected()
    bo.wait_status("completed")
    assert bo.page.locator("#turns li").count() == 2
    bo.page.click("#new-convo")
    assert bo.page.locator("#turns li").count() == 0


def test_reload_mid_stream_continues_with_no_gap_and_no_repeat(person, web: Stack) -> None:
    cy = person()
    cy.open().sign_in("web-cy")
    prompt = f"A long story about the sea. {SLOW}"
    expected = expected_text(prompt)
    job_id = cy.ask_job(prompt)
    cy.wait_for(lambda: len(cy.text()) > 40, 20)
    cy.page.reload()
    cy.wait_connected()
    cy.wait_for(lambda: cy.page.url.endswith(job_id) and len(cy.text()) > 0, 10)
    cy.shot("04-after-reload")
    assert expected.startswith(cy.text())
    assert cy.page.text_content("#status") != "Completed", "reload should land mid-stream"
    cy.wait_text(expected, timeout=30)


def test_group_answer_reaches_members_only(person, web: Stack) -> None:
    owner, friend, stranger = person(), person(), person()
    owner.open().sign_in("web-gina")
    owner.page.fill("#group-name", "web-team")
    owner.page.click("#group-form button")
    owner.page.wait_for_selector("#groups li[data-group='web-team']")
    owner.page.click("#groups li[data-group='web-team'] >> text=Invite link")
    owner.page.wait_for_selector("#invite:not([hidden])")
    link = owner.page.input_value("#invite-link")
    assert "#join=web-team&invite=" in link
    owner.shot("05-invite-link")

    friend.page.goto(link)  # not signed in yet: the invite survives the sign-in
    friend.sign_in("web-hal")
    friend.page.wait_for_selector("#groups li[data-group='web-team']")
    stranger.open().sign_in("web-ivy")
    owner.page.click("#groups li[data-group='web-team'] >> text=Members")
    owner.page.wait_for_selector("#groups .members li >> text=web-hal")

    owner.page.wait_for_selector("#target option[value='group:web-team']", state="attached")
    prompt = f"A group answer about bridges. {PACED}"
    expected = expected_text(prompt)
    job_id = owner.ask_job(prompt, target="group:web-team")
    owner.wait_text(expected)
    friend.wait_for(lambda: _deltas(friend, job_id) > 0, 10)
    friend.page.click("#jobs-refresh")  # members may open a group job, too
    friend.page.goto(f"{web.base}/#job={job_id}")
    friend.page.reload()
    friend.wait_text(expected)
    owner.shot("06-group-owner")
    friend.shot("07-group-member")
    assert _deltas(stranger, job_id) == 0
    stranger.page.goto(f"{web.base}/#job={job_id}")
    stranger.page.reload()
    stranger.wait_for(lambda: "no longer exists" in stranger.toast(), 10)
    assert stranger.text() == ""


def test_tab_only_answer_reaches_only_that_tab(person, web: Stack) -> None:
    ctx = person()
    ctx.open().sign_in("web-jo")
    other = ctx.context.new_page()
    other.add_init_script(_COUNT_DELTAS)
    other.goto(web.base + "/")
    other.wait_for_selector("#conn[data-state=connected]")
    ctx.wait_bound()
    prompt = f"Only for this tab. {PACED}"
    job_id = ctx.ask_job(prompt, target="connection")
    ctx.wait_text(expected_text(prompt))
    assert _deltas(ctx, job_id) > 0
    assert other.evaluate("id => window.__deltas[id] || 0", job_id) == 0
    other.close()


def test_cancel_stops_the_answer(person, web: Stack) -> None:
    kim = person()
    kim.open().sign_in("web-kim")
    prompt = f"A very long answer. {SLOW}"
    kim.ask_job(prompt)
    kim.wait_for(lambda: len(kim.text()) > 20, 20)
    kim.page.click("#cancel")
    kim.wait_status("canceled", timeout=20)
    kim.shot("08-canceled")
    text = kim.text()
    assert text and expected_text(prompt).startswith(text)
    assert len(text) < len(expected_text(prompt))
    assert kim.page.is_disabled("#cancel")


def test_errors_are_shown_in_plain_words(person, web: Stack) -> None:
    lee = person()
    lee.open().sign_in("web-lee")
    lee.ask("x" * 32001)
    lee.wait_for(lambda: "Invalid prompt" in lee.toast(), 10)
    assert "at most 32000 characters" in lee.toast()
    lee.shot("09-invalid-prompt")
    for i in range(JOBS_PER_MINUTE):
        prompt = f"Quick answer {i}. {FAST}"
        if lee.page.is_enabled("#new-convo"):
            lee.page.click("#new-convo")  # each a fresh prompt, not a continuation
        lee.ask_job(prompt)
        lee.wait_text(expected_text(prompt))
    lee.ask(f"One too many. {FAST}")
    lee.wait_for(lambda: lee.toast().startswith("Rate limited"), 10)
    assert "Try again in" in lee.toast()
    lee.shot("10-rate-limited")


def test_phone_sized_screen_and_keyboard(person, web: Stack) -> None:
    max_ = person(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    max_.open()
    max_.page.focus("#user")
    max_.page.keyboard.type("web-max")
    max_.page.keyboard.press("Enter")
    max_.wait_connected()
    width = max_.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    prompt = f"Short. {FAST}"
    max_.page.focus("#prompt")
    max_.page.keyboard.type(prompt)
    max_.page.keyboard.press("Control+Enter")
    max_.wait_text(expected_text(prompt))
    max_.shot("11-phone")
