"""The dashboard in a real headless Chromium against ``twist statserver`` in a subprocess:
what an operator sees, checked against the server's JSON API.

Each test saves a screenshot under its tmp dir. Every wait is bounded (Selenium's
explicit waits in a thread, ``Deferred.addTimeout`` around them).
"""

import signal
import time

import pytest
import pytest_twisted
from browser import (
    console_errors,
    get_json,
    in_thread,
    missing,
    screenshot,
    start_browser,
    start_statserver,
    wait_for,
)
from stats import stat
from wsclient import PROCESS_TIMEOUT, bounded, connect

from statserver.wire import encode_json, encode_protobuf
from statserver.wire.gobstat import encode_stat_frame

# history sampled every second, so that sparklines grow within a test
ARGS = ("--history-length", "60", "--history-resolution", "1")


def _now_ns():
    return time.time_ns()


JS_ROWS = """
return Array.from(document.querySelectorAll('#revisions-rows .row')).map(r => [
  r.dataset.namespace, r.dataset.name,
  ...[2, 3, 4, 5].map(i => r.children[i].title),
  r.children[6].textContent,
  Number(r.children[8].firstChild.getAttribute('data-points') || 0)]);
"""


def rows(driver):
    return driver.execute_script(JS_ROWS)


def row_of(driver, namespace, name):
    for row in rows(driver):
        if row[0] == namespace and row[1] == name:
            return row
    return None


def status(driver):
    return driver.execute_script("return document.getElementById('status').textContent")


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module's tests (skipped, with the reason, where it is missing:
    under CI=true a skip fails the run, and .ci/run installs it)."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


class Server:
    """``twist statserver`` for one test; ``stop()`` ends it with SIGTERM."""

    def __init__(self, twist, port):
        self.twist, self.port = twist, port

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    async def stop(self):
        if not self.twist.ended.called:
            self.twist.process.signalProcess(signal.SIGTERM)
            await bounded(self.twist.ended, PROCESS_TIMEOUT)


@pytest.fixture
def servers(browser):
    """The servers a test starts; at its end the page is left (so that the streams'
    ends do not show in the next test's console) and they are killed."""
    started = []
    yield started
    browser.get("about:blank")
    console_errors(browser)
    for server in started:
        server.twist.kill()


async def start(servers, *args, port="tcp:0:interface=127.0.0.1"):
    server = Server(*await start_statserver(*ARGS, *args, port=port))
    servers.append(server)
    return server


async def open_dashboard(driver, server, path="/dashboard/"):
    """Load the page and wait until it shows live data."""
    await in_thread(driver.get, server.url + path)
    await in_thread(wait_for, driver, lambda d: status(d) == "live", 10, "never live")


@pytest_twisted.ensureDeferred
async def test_browser_get_of_root_opens_the_page_without_console_errors(browser, servers,
                                                                          tmp_path):
    server = await start(servers)
    console_errors(browser)  # forget what earlier tests left
    await open_dashboard(browser, server, path="/")
    assert browser.current_url == server.url + "/dashboard/"
    assert browser.title == "statserver dashboard"
    for section in ("Server", "Senders", "Revisions"):
        assert section in browser.find_element("tag name", "body").text
    screenshot(browser, tmp_path, "empty")
    assert console_errors(browser) == []


@pytest_twisted.ensureDeferred
async def test_a_revision_appears_within_2s_with_the_api_numbers_and_its_sparkline_grows(
        browser, servers, tmp_path):
    server = await start(servers)
    await open_dashboard(browser, server)
    sender = await connect(server.port)
    sender.send_frame(encode_protobuf([
        stat("rev-a", namespace="ns-a", concurrency=3.5, requests=7.0, timestamp=_now_ns())]))
    # within 2 s of the first stat (the page updates once a second)
    row = await in_thread(wait_for, browser, lambda d: row_of(d, "ns-a", "rev-a"), 2.0,
                          "revision not shown within 2 s")

    def same_as_api(driver):
        api = get_json(server.port, "/api/v1/revisions/ns-a/rev-a")
        shown = row_of(driver, "ns-a", "rev-a")
        expected = [api["concurrency"]["stable"], api["concurrency"]["panic"],
                    api["rps"]["stable"], api["rps"]["panic"]]
        return shown and [float(v) for v in shown[2:6]] == expected and \
            shown[6] == str(api["pods"]) and shown

    row = await in_thread(wait_for, browser, same_as_api, 5, "numbers differ from the API")
    assert [float(v) for v in row[2:4]] == [3.5, 3.5]
    # the sparkline gains points as the history is sampled while stats arrive
    points = row[7]
    for _ in range(3):
        sender.send_frame(encode_protobuf([
            stat("rev-a", namespace="ns-a", concurrency=5.0, timestamp=_now_ns())]))
        await in_thread(wait_for, browser,
                        lambda d, before=points: (row_of(d, "ns-a", "rev-a") or [0] * 8)[7] > before, 5,
                        "sparkline did not grow")
        points = row_of(browser, "ns-a", "rev-a")[7]
    assert points >= 2
    # the revision's own view: its larger charts draw the same history
    await in_thread(browser.find_element("link text", "rev-a").click)
    await in_thread(wait_for, browser, lambda d: d.execute_script(
        "return Number(document.querySelector('#revision-concurrency svg')"
        ".getAttribute('data-points'))") >= 2, 5, "revision view without chart")
    assert "ns-a/rev-a" in browser.find_element("id", "revision-title").text
    screenshot(browser, tmp_path, "revision")
    # about one history request a sample (one a second here), not a request loop
    fetches = ("return performance.getEntriesByType('resource')"
               ".filter(e => e.name.includes('/dashboard/history')).length")
    renders = "return window.statserverDashboard.state.renderMs.length"
    before, seen = browser.execute_script(fetches), browser.execute_script(renders)
    await in_thread(wait_for, browser, lambda d: d.execute_script(renders) >= seen + 3, 10,
                    "no snapshots")
    assert browser.execute_script(fetches) - before <= 6
    sender.sendClose()
    await bounded(sender.closed)  # before the server is killed: no close timer left
    assert console_errors(browser) == []


@pytest_twisted.ensureDeferred
async def test_sorting_and_filtering(browser, servers, tmp_path):
    server = await start(servers)
    sender = await connect(server.port)
    sender.send_frame(encode_protobuf([
        stat("checkout-00001", namespace="prod", concurrency=9.0, timestamp=_now_ns()),
        stat("search-00002", namespace="prod", concurrency=1.0, timestamp=_now_ns()),
        stat("checkout-00003", namespace="dev", concurrency=4.0, timestamp=_now_ns()),
    ]))
    await open_dashboard(browser, server)
    await in_thread(wait_for, browser, lambda d: len(rows(d)) == 3, 5, "3 rows")
    names = lambda d: [r[1] for r in rows(d)]  # noqa: E731
    # by namespace and name at first, as /api/v1/revisions lists them
    assert names(browser) == ["checkout-00003", "checkout-00001", "search-00002"]
    name_header = browser.find_element("css selector", "#revisions-head button[data-column='1']")
    await in_thread(name_header.click)  # by name (ties by namespace)
    await in_thread(wait_for, browser, lambda d: names(d) == [
        "checkout-00001", "checkout-00003", "search-00002"], 3, "not sorted by name")

    header = browser.find_element("css selector", "#revisions-head button[data-column='2']")
    await in_thread(header.click)  # stable concurrency, highest first
    await in_thread(wait_for, browser, lambda d: names(d) == [
        "checkout-00001", "checkout-00003", "search-00002"], 3, "not sorted by concurrency")
    await in_thread(header.click)  # lowest first
    await in_thread(wait_for, browser, lambda d: names(d) == [
        "search-00002", "checkout-00003", "checkout-00001"], 3, "not sorted ascending")

    from selenium.webdriver.support.ui import Select

    select = Select(browser.find_element("id", "namespace-filter"))
    await in_thread(select.select_by_value, "prod")
    await in_thread(wait_for, browser, lambda d: names(d) == [
        "search-00002", "checkout-00001"], 3, "namespace filter")
    await in_thread(select.select_by_value, "")
    box = browser.find_element("id", "text-filter")
    await in_thread(box.send_keys, "CHECKOUT")  # a case-insensitive substring
    await in_thread(wait_for, browser, lambda d: sorted(names(d)) == [
        "checkout-00001", "checkout-00003"], 3, "substring filter")
    assert "2 of 3" in browser.find_element("id", "revisions-count").text
    screenshot(browser, tmp_path, "filtered")
    await in_thread(box.clear)
    sender.sendClose()
    await bounded(sender.closed)
    assert console_errors(browser) == []


@pytest_twisted.ensureDeferred
async def test_senders_appear_with_their_knative_era(browser, servers, tmp_path):
    server = await start(servers)
    await open_dashboard(browser, server)
    old = await connect(server.port)
    old.send_frame(encode_stat_frame(stat("rev", timestamp=_now_ns()), era="v08"))
    json_sender = await connect(server.port)
    json_sender.send_frame(encode_json(stat("rev", timestamp=_now_ns())).encode(), binary=False)
    json_sender.send_frame(b"not json", binary=False)  # a bad frame, counted
    peer_of = {f"tcp4:127.0.0.1:{c.transport.getHost().port}": c for c in (old, json_sender)}

    def senders(driver):
        return driver.execute_script(
            "return Array.from(document.querySelectorAll('#senders-body tr'))"
            ".map(tr => Array.from(tr.cells).map(c => c.textContent))")

    def both(driver):
        shown = {row[0]: row for row in senders(driver)}
        if set(shown) != set(peer_of) or any(r[1] == "no frame yet" or r[4] == "0" and
                                             peer_of[p] is json_sender
                                             for p, r in shown.items()):
            return None
        return shown

    shown = await in_thread(wait_for, browser, both, 5, "senders not shown")
    old_row = shown[f"tcp4:127.0.0.1:{old.transport.getHost().port}"]
    json_row = shown[f"tcp4:127.0.0.1:{json_sender.transport.getHost().port}"]
    assert old_row[1] == "v08 · Knative v0.8–v0.9"
    assert old_row[2:5] == ["1", "1", "0"]
    assert json_row[1] == "json · Knative v0.16–v0.19"
    assert json_row[2:5] == ["2", "1", "1"]
    api = await in_thread(get_json, server.port, "/api/v1/connections")
    assert sorted(c["peer"] for c in api["connections"]) == sorted(peer_of)
    screenshot(browser, tmp_path, "senders")
    for c in (old, json_sender):
        c.sendClose()
        await bounded(c.closed)
    assert console_errors(browser) == []


HOSTILE_NAMESPACE = "ns-\"'<&é"
HOSTILE_NAME = "rev-<b>bold</b>&amp;\"ü—'"
IMG = "<img src=x onerror=alert(1)>"
JS_FEED = """
const d = window.statserverDashboard, s = JSON.parse(JSON.stringify(d.state.snapshot));
s.revisions = [[arguments[0], arguments[0], 1, 3, 1, 1, 1, 0.5]];
s.connections = [{peer: arguments[0], formats: [{kind: arguments[0], era: arguments[0], frames: 1}],
  frames: 1, stats: 1, bad_frames: 0, connected_since: "2026-01-01T00:00:00Z",
  last_frame_age_seconds: 0.1}];
d.state.text = ""; d.state.namespace = "";
d.render(s);
const row = document.querySelector('#revisions-rows .row');
return [row.children[0].textContent, row.children[1].textContent,
        document.querySelector('#senders-body td').textContent,
        document.querySelectorAll('img[src=x], #revisions-rows *:not(div):not(a):not(span):not(svg):not(path)').length];
"""


@pytest_twisted.ensureDeferred
async def test_hostile_names_render_as_text(browser, servers, tmp_path):
    server = await start(servers)
    await open_dashboard(browser, server)
    sender = await connect(server.port)
    sender.send_frame(encode_protobuf([
        stat(HOSTILE_NAME, namespace=HOSTILE_NAMESPACE, timestamp=_now_ns())]))
    row = await in_thread(wait_for, browser, lambda d: row_of(d, HOSTILE_NAMESPACE, HOSTILE_NAME),
                          5, "hostile revision not shown")
    cells = browser.execute_script(
        "const r = document.querySelector('#revisions-rows .row');"
        "return [r.children[0].textContent, r.children[1].textContent,"
        " document.querySelectorAll('#revisions-rows b').length]")
    assert cells == [HOSTILE_NAMESPACE, HOSTILE_NAME, 0]
    assert row[0] == HOSTILE_NAMESPACE
    screenshot(browser, tmp_path, "hostile-server")
    # below the server's rules: straight into the page's rendering code
    shown = browser.execute_script(JS_FEED, IMG)
    assert shown == [IMG, IMG, IMG, 0]
    screenshot(browser, tmp_path, "hostile-img")
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    sender.sendClose()
    await bounded(sender.closed)
    assert console_errors(browser) == []


@pytest_twisted.ensureDeferred
async def test_the_page_says_disconnected_and_resumes_after_a_restart(browser, servers,
                                                                       tmp_path):
    first = await start(servers)
    await open_dashboard(browser, first)
    await first.stop()
    await in_thread(wait_for, browser, lambda d: status(d).startswith("disconnected"), 10,
                    "disconnection not shown")
    screenshot(browser, tmp_path, "disconnected")
    second = await start(servers, port=f"tcp:{first.port}:interface=127.0.0.1")
    sender = await connect(second.port)
    sender.send_frame(encode_protobuf([
        stat("after-restart", namespace="ns-r", timestamp=_now_ns())]))
    await in_thread(wait_for, browser, lambda d: status(d) == "live" and
                    row_of(d, "ns-r", "after-restart"), 15, "did not resume")
    screenshot(browser, tmp_path, "resumed")
    sender.sendClose()
    await bounded(sender.closed)
