"""The one exception the gob codec raises."""


class GobError(ValueError):
    """A gob stream is malformed, exceeds a limit, or does not fit the target type.

    The message says what was wrong and at which byte offset of the input; ``offset``
    holds that offset (or None where no single byte is to blame).
    """

    def __init__(self, message, offset=None):
        if offset is not None:
            message = f"{message} (at byte {offset})"
        super().__init__(message)
        self.offset = offset
