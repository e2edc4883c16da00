"""Render docs/protocol.md from `protocol` so the reference never drifts.

`python3 -m introspect.protodoc docs/protocol.md` rewrites it;
tests/test_drift.py fails when the committed file differs from render().
"""
from __future__ import annotations

import sys

from . import protocol as P

_INTRO = """# The probe-channel wire protocol

GENERATED from `introspect/protocol.py` by `make docs`; do not edit by hand.

The host talks to a unik kernel over a virtio-serial port named
`{port}`.  The channel does not use the guest's network stack.  Each
instance's multiplexer (`muxd`) owns QEMU's socket and serves any number of
host clients on `chan.sock` with the same framing, rewriting request ids.

## Framing

Every frame is a {hsize}-byte header and `length` payload bytes.  Integers are
little-endian; structs are packed.  Protocol version **{version}**.

| offset | field | type | meaning |
| --- | --- | --- | --- |
{header_rows}

* CRC-32 is IEEE 802.3 (zlib's `crc32`).
* A reply has the request's `id` and type `request | 0x{reply:04x}`; a failed
  request is answered with type `ERROR` (0xffff) and an error payload.
* Request ids are the client's choice, except 0, which marks unsolicited
  kernel frames.  Through the mux, ids are rewritten on the way up and
  restored on the way down, so clients need not coordinate.
* Request payloads larger than {maxreq} bytes are refused (OVERSIZED); replies
  carry at most {maxpay} bytes.

## Resynchronisation and rejected frames

The kernel's decoder (kernel/chan/frame.c, mirrored by
`introspect.codec.Decoder`) never stalls on garbage:

1. bytes before the next `U` that is followed by `K` are skipped
   (counted in `skipped_bytes`);
2. a header whose `header_crc` is wrong is rejected (BAD_HEADER) and the
   search restarts one byte later;
3. a header announcing more than {maxreq} bytes is rejected (OVERSIZED) and
   its payload discarded;
4. a payload whose CRC is wrong drops the frame (BAD_CHECKSUM);
5. a well-formed frame of an unknown type (UNKNOWN_TYPE) or with a payload of
   the wrong size (BAD_PAYLOAD) gets an ERROR reply;
6. bytes of a partial frame held when the host disconnects count as TRUNCATED.

Every rejected frame is counted by reason in CHANSTAT.

| reason | value | meaning |
| --- | --- | --- |
{reject_rows}

## Requests

The kernel's request table (`WIRE_REQUESTS` in the generated wire.h, which
generates its `frame_classify` and its dispatch to `chan_serve_<name>`)
and `introspect.codec.classify` both come from `protocol.REQUESTS`.  A
request's payload is its fixed head, then (for some types) a variable
number of items; any other size is BAD_PAYLOAD.  A request that needs a
feature is sent only to a kernel whose HELLO reply lists it.

| type | value | request payload | size | feature | reply payload |
| --- | --- | --- | --- | --- | --- |
{request_rows}

## Features (HELLO)

The HELLO request's `features` are the capability bits the host knows, the
reply's those the kernel has.  A host asked for a request of a family the
kernel lacks says which capability is missing, instead of failing on the
version, which changes only when a layout does.

| feature | bit | meaning |
| --- | --- | --- |
{feature_rows}

## Streams

Unsolicited kernel frames (id 0).  Through the mux they reach only the
clients that subscribed to their type (MUX_SUBSCRIBE).

| type | value | payload | feature |
| --- | --- | --- | --- |
{stream_rows}

## Error codes

| code | value | meaning |
| --- | --- | --- |
{error_rows}

## Thread states

| state | value |
| --- | --- |
{state_rows}

## Deadman reasons

The kernel aborts a running trace session by itself when its clauses take
more than `cpu_pct` percent of a window, or when no request has named the
session for `timeout_ms` (TRACE_DEADMAN sets both; every request naming a
session is its host's heartbeat, TRACE_STATUS the usual one).  Its sites
are restored without END; a TRACE_ABORT frame goes to the session's owner
and TRACE_STATUS carries the same fields from then on; TRACE_STOP of an
aborted session succeeds.  Without TRACE_DEADMAN a session has the kernel's
CPU budget (DEADMAN_CPU_PCT over DEADMAN_WINDOW_MS) and no drain deadman.

| reason | value |
| --- | --- |
{deadman_rows}

## Payload layouts
"""

def _size(r) -> str:
    if r.item == 0:
        return str(r.head)
    if r.item == 1:
        return f"{r.head} + {r.min_items}..{r.max_items} bytes"
    return f"{r.head} + {r.min_items}..{r.max_items} × {r.item}"


def _feature(bit: int) -> str:
    return " ".join(f.name for f in P.Feature if bit & f) or "-"


def _enum_rows(enum) -> str:
    return "\n".join(f"| {m.name} | {int(m)} | {_comment(enum, m)} |" for m in enum)


def _comment(enum, member) -> str:
    import inspect
    src = inspect.getsource(enum).splitlines()
    for line in src:
        if line.strip().startswith(member.name + " ") and "#" in line:
            return line.split("#", 1)[1].strip()
    return ""


def render() -> str:
    """The whole document (pure)."""
    offs = P.HEADER.offsets()
    header_rows = "\n".join(f"| {offs[f]} | `{f}` | {t} | {c} |"
                            for f, t, c in P.HEADER.fields)
    req_rows = []
    for m, r in P.REQUESTS.items():
        req = "empty" if r.layout is None else f"`{r.layout.name}`"
        req_rows.append(f"| {m.name} | 0x{int(m):04x} | {req} | {_size(r)} | "
                        f"{_feature(r.feature)} | `{r.reply}` |")
    feature_rows = "\n".join(f"| {f.name} | {int(f).bit_length() - 1} | {_comment(P.Feature, f)} |"
                             for f in P.Feature)
    stream_rows = "\n".join(f"| {m.name} | 0x{int(m):04x} | {doc} | {_feature(feat)} |"
                            for m, (lay, doc, feat) in P.STREAMS.items())
    text = _INTRO.format(
        port=P.PORT_NAME, hsize=P.HEADER_SIZE, version=P.VERSION,
        header_rows=header_rows, reply=P.REPLY, maxreq=P.MAX_REQUEST,
        maxpay=P.MAX_PAYLOAD, reject_rows=_enum_rows(P.Reject),
        request_rows="\n".join(req_rows), feature_rows=feature_rows,
        stream_rows=stream_rows, error_rows=_enum_rows(P.ErrCode),
        state_rows="\n".join(f"| {m.name.lower()} | {int(m)} |" for m in P.ThreadState),
        deadman_rows="\n".join(f"| {m.name.lower()} | {int(m)} |" for m in P.Deadman))
    parts = [text]
    parts.extend(_layout(lay) for lay in P.LAYOUTS[1:])
    parts.append(_MUX.format(first=P.MUX_FIRST, last=P.MUX_LAST))
    parts.append("| type | value | request payload | meaning |\n| --- | --- | --- | --- |")
    for m, lay in P.MUX_REQUESTS.items():
        req = "empty" if lay is None else f"`{lay.name}`"
        parts.append(f"| {m.name} | 0x{int(m):04x} | {req} | {_comment(P.MuxType, m)} |")
    parts.extend(_layout(lay) for lay in (P.MUX_INFO_REP, P.MUX_SUBSCRIBE_REQ))
    return "\n".join(parts) + "\n"


_MUX = """
## Mux-local requests

Types 0x{first:04x}–0x{last:04x} never reach the kernel: the instance's
multiplexer answers them itself (reply type `request | 0x8000`, same id).
Unsolicited kernel frames (id 0) go only to clients that subscribed to
their type range.
"""


def _layout(lay) -> str:
    offs = lay.offsets()
    rows = [f"\n### `{lay.name}` ({lay.size} bytes) — {lay.doc}\n",
            "| offset | field | type | meaning |\n| --- | --- | --- | --- |"]
    rows.extend(f"| {offs[f]} | `{f}` | {t} | {c} |" for f, t, c in lay.fields)
    return "\n".join(rows)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if argv:
        with open(argv[0], "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
