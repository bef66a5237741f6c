"""Log levels that reach journald.

Under systemd a service's stdout and stderr are a stream to the journal, which gives every
line the priority "info" unless the line starts with a syslog priority in angle brackets
(``<4>`` for a warning; sd-daemon(3)). systemd names that stream in ``$JOURNAL_STREAM``
(``DEVICE:INODE``). When ``twist``'s text log goes to it, each line here gets the prefix of
its event's level, so that ``journalctl -p warning`` finds the warnings.
"""

import os

from twisted.logger import FileLogObserver, LogLevel, formatEventAsClassicLogText

# syslog priorities (RFC 5424) of twisted.logger's levels
PRIORITIES = {
    LogLevel.debug: 7,
    LogLevel.info: 6,
    LogLevel.warn: 4,
    LogLevel.error: 3,
    LogLevel.critical: 2,
}


def is_journal_stream(stream, environ=None):
    """True when ``stream`` is the journal stream that ``$JOURNAL_STREAM`` names."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (AttributeError, OSError, ValueError):
        return False


def format_with_priority(event):
    """``event`` as twist's text format writes it, each line prefixed with ``<N>``."""
    text = formatEventAsClassicLogText(event)
    if not text:
        return text
    prefix = f"<{PRIORITIES.get(event.get('log_level'), 6)}>"
    # a traceback is several lines: journald reads each line as an entry of its own
    return "".join(prefix + line for line in text.splitlines(keepends=True))


def journald_text_observer(stream):
    """A text ``FileLogObserver`` on ``stream`` whose lines carry journald priorities."""
    return FileLogObserver(stream, format_with_priority)
