"""tests/conftest.py: under CI=true a skip fails with its reason; locally it stays a skip."""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")
TESTS = '''
import pytest

def test_passes():
    pass

def test_skips():
    pytest.skip("no frobnicator here")

@pytest.mark.skipif(True, reason="not on this platform")
def test_marked():
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfails():
    assert False
'''


def run(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=TESTS)
    pytester.makepyfile(test_skipped_module='import pytest\npytest.skip("no module here", allow_module_level=True)\n')
    # pytest-twisted is kept out of the inner run: it would stop the outer run's reactor.
    return pytester.runpytest_inprocess("-ra", "-p", "no:cacheprovider", "-p", "no:twisted",
                                        "--continue-on-collection-errors")


@pytest.mark.parametrize("value", ["true", "1"])
def test_under_ci_a_skip_is_a_failure_with_its_reason(pytester, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    result = run(pytester)
    # a skip in the test fails it; a skip mark (setup) and a module skip are errors
    result.assert_outcomes(passed=1, failed=1, xfailed=1, errors=2)
    result.stdout.fnmatch_lines([
        "*module skipped under CI=true, where every test must run: *no module here*",
        "*test skipped under CI=true, where every test must run: *no frobnicator here*",
        "*test skipped under CI=true, where every test must run: *not on this platform*",
    ])


@pytest.mark.parametrize("value", [None, "false"])
def test_elsewhere_a_skip_stays_a_skip_and_says_why(pytester, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    result = run(pytester)
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    result.stdout.fnmatch_lines(["SKIPPED*no module here", "SKIPPED*no frobnicator here",
                                 "SKIPPED*not on this platform"])
