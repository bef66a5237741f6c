"""``FrameError``: a frame that could not be decoded, whichever the format."""


class FrameError(ValueError):
    """A frame could not be decoded; ``format`` is the format it was detected as."""

    def __init__(self, format, reason):
        super().__init__(f"bad {format} frame: {reason}")
        self.format = format
        self.reason = reason
