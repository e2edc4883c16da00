"""Errors the host tools raise on purpose.

Every error a user can cause (or meet) is a `UnikError`: one line saying what
was wrong and, where there is one, a hint saying what to do.  The CLI prints
them as `unik: error: <msg>` / `hint: <hint>` and exits with status 2.
"""
from __future__ import annotations


class UnikError(Exception):
    """An error to show the user: `msg` (what was wrong) and `hint` (what to do)."""

    def __init__(self, msg: str, hint: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.hint = hint

    def __str__(self) -> str:
        return self.msg


class NoInstance(UnikError):
    """No such instance, none running, or an ambiguous choice."""


class NotRunning(UnikError):
    """The instance exists but its QEMU has exited (stale)."""


class Panicked(NotRunning):
    """QEMU runs but the kernel panicked and is halted: its channel cannot answer."""


class BuildError(UnikError):
    """The kernel could not be built or found."""


class ChannelDown(UnikError):
    """The probe channel (mux or chardev) cannot be reached or went away."""


class ChannelTimeout(ChannelDown):
    """No reply within the timeout."""


class MissingFeature(UnikError):
    """The running kernel lacks the capability (HELLO feature) a request needs."""

    def __init__(self, instance: str, feature: str, what: str) -> None:
        super().__init__(f"the kernel of {instance} lacks the {feature} capability "
                         f"(needed for {what})",
                         "it was built from older sources: rebuild the kernel "
                         "(unik build) and boot the instance again")
        self.feature = feature


class ChannelError(UnikError):
    """The kernel (or the mux) answered a request with an ERROR frame."""

    def __init__(self, code: int, code_name: str, message: str, req_type: int) -> None:
        super().__init__(f"{_type_name(req_type)} failed: {code_name}: {message}",
                         _HINTS.get(code_name))
        self.code = code
        self.code_name = code_name
        self.message = message
        self.req_type = req_type


_HINTS = {
    "FAULT": "the address is not mapped or not readable in the guest",
    "TOO_LARGE": "ask for fewer bytes",
    "VERSION": "host and kernel speak different protocol versions: rebuild the kernel",
    "BUSY": "try again in a moment",
    "UNKNOWN_TYPE": "the running kernel does not serve this request (old build?)",
}


def _type_name(t: int) -> str:
    from . import protocol as P
    for enum in (P.MsgType, P.MuxType):
        try:
            return enum(t).name
        except ValueError:
            pass
    return f"request {t:#06x}"
