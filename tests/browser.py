"""Test helpers: Debian's headless Chromium driven by Selenium, and ``twist statserver``
with its dashboard in a subprocess.

Selenium's calls block, so they run in the reactor's thread pool (``in_thread``), bounded
in time, while the reactor keeps serving the test's WebSocket senders. Nothing is ever
downloaded: the driver and the browser are Debian's, named explicitly, so Selenium
Manager is not consulted.
"""

import json
import os
import urllib.request

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twistproc import listening_port, spawn_twist
from wsclient import PROCESS_TIMEOUT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def missing():
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


def start_browser():
    """A headless Chromium whose console log can be read (``console_errors``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PROCESS_TIMEOUT)
    driver.set_script_timeout(PROCESS_TIMEOUT)
    return driver


def in_thread(f, *args, seconds=PROCESS_TIMEOUT):
    """``f(*args)`` in a thread, as a Deferred bounded by ``seconds``."""
    return deferToThread(f, *args).addTimeout(seconds, reactor)


def wait_for(driver, condition, seconds, message=""):
    """Block until ``condition(driver)`` is truthy (polled every 50 ms); its value, or
    Selenium's ``TimeoutException`` after ``seconds``."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.05).until(condition, message)


def console_errors(driver):
    """The browser console's SEVERE entries since the last call."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def get_json(port, path):
    """``GET path`` on 127.0.0.1:port as JSON (blocking: call it in a thread)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.loads(response.read())


async def start_statserver(*args, port="tcp:0:interface=127.0.0.1"):
    """``twist statserver --port PORT ARGS`` as a ``Twist`` and the port it listens on."""
    twist = spawn_twist("statserver", "--port", port, *args,
                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        return twist, await listening_port(twist)
    except BaseException:
        twist.kill()
        raise


def screenshot(driver, tmp_path, name):
    """Save the page as ``tmp_path/name.png``; return the path."""
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
