"""Zip archives whose headers lie: written by zipfile, then patched in place."""

import struct
import zipfile
from pathlib import Path

LOCAL = b"PK\x03\x04"
CENTRAL = b"PK\x01\x02"
# Field offsets in the local file header and in the central directory entry.
_LOCAL_FIELDS = {"flag": (6, "<H"), "method": (8, "<H"), "crc": (14, "<I"), "size": (22, "<I")}
_CENTRAL_FIELDS = {"flag": (8, "<H"), "method": (10, "<H"), "crc": (16, "<I"), "size": (24, "<I")}


def patch_member(path: Path, name: str, **fields: int) -> None:
    """Rewrites `flag`, `method`, `crc` or `size` (uncompressed) of member `name` in both of
    its headers, leaving its data as it was."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo(name).header_offset
    assert data[local : local + 4] == LOCAL
    central = data.index(CENTRAL)
    while data[central + 46 : central + 46 + len(name)] != name.encode():
        central = data.index(CENTRAL, central + 4)
    for field, value in fields.items():
        offset, fmt = _LOCAL_FIELDS[field]
        struct.pack_into(fmt, data, local + offset, value)
        offset, fmt = _CENTRAL_FIELDS[field]
        struct.pack_into(fmt, data, central + offset, value)
    path.write_bytes(bytes(data))


def flip_data_byte(path: Path, name: str) -> None:
    """Damages one byte in the middle of a member's (compressed) data."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
