"""The one exception type faceyolo raises at its boundaries."""


class FaceyoloError(Exception):
    """A user-facing error: says what went wrong and where (file, line, reason).

    The CLI prints it without a traceback and exits with status 2.
    """
