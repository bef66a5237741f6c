"""Any string made safe to write: for log lines and for outputs that must be UTF-8.

A sender's strings reach the server as Python ``str``, but not every ``str`` is text: a
gob string of bytes that are not UTF-8 decodes to lone surrogates (``surrogateescape``),
and so does a JSON ``"\\ud800"`` escape. ``str.encode("utf-8")`` raises on those, which
a log observer or an HTTP body cannot afford.
"""

#: A value quoted in a log line is cut to this many characters.
QUOTE_LIMIT = 64


def quote(value, limit=QUOTE_LIMIT):
    """``value`` for a log line: ASCII, quoted and escaped like ``ascii()`` (so a control
    character or a lone surrogate shows as ``\\x07`` or ``\\udcff``), cut to ``limit``
    characters with the full length said."""
    if len(value) <= limit:
        return ascii(value)
    return f"{ascii(value[:limit])}... ({len(value)} characters)"


def printable(text, limit=300):
    """``text`` (a message, not a value) as is when it is printable and short, else
    escaped as ``ascii()`` does and cut to ``limit`` characters."""
    if len(text) <= limit and text.isprintable():
        return text
    return ascii(text[:limit])[1:-1] + ("..." if len(text) > limit else "")


def utf8_safe(text):
    """``text`` if it encodes to UTF-8, else with every lone surrogate written as
    ``\\udcff`` (so ``text.encode("utf-8")`` cannot fail); ASCII costs one check."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
