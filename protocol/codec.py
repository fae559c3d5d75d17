"""Canonical msgpack: the one packer and the one strict unpacker every wire format here uses.

Records, gossip batches, sync messages and reconciliation frames are all msgpack values made of
ints, strings, bytes and arrays. Packing uses msgpack-python's smallest encodings with `bin` for
bytes; unpacking refuses maps and ext types outright, bounds every length before allocating,
and turns whatever msgpack raises into the caller's `ProtocolError` subclass. Callers re-encode
what they unpacked and compare, to refuse non-canonical bytes.
"""

from __future__ import annotations

from typing import Any

import msgpack

from protocol.errors import ProtocolError


def pack(value: Any) -> bytes:
    """Returns the canonical encoding of `value`."""
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(
    data: bytes,
    error: type[ProtocolError],
    what: str,
    *,
    max_bin: int,
    max_str: int,
    max_array: int,
) -> Any:
    """Unpacks one msgpack value (arrays as tuples), with bounded lengths and no maps or ext.

    Raises:
        error: `data` is not exactly one msgpack value within the bounds: trailing bytes,
            truncation, bad UTF-8, nesting too deep, a map, an ext type or a length over its
            bound.
    """
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=True,
            max_bin_len=max_bin,
            max_str_len=max_str,
            max_array_len=max_array,
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        # ValueError covers ExtraData, FormatError, StackError, bad UTF-8 and limit breaches.
        raise error(f"{what}: {exc}") from None
