"""Helpers to take dumps apart and build malformed ones, for tests and the
fuzzer's seed corpus."""
import struct
import zlib

MAGIC = b"\x89CTRK\r\n\x1a"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def header(major=1, minor=0, flags=0, sentinel=1234.5):
    return MAGIC + struct.pack("<HHId", major, minor, flags, sentinel)


def section(tag, payload):
    return bytes([tag]) + varint(len(payload)) + payload


def seal(body):
    """Append the END section with the right checksum."""
    end = b"\x00\x04"
    return body + end + struct.pack("<I", zlib.crc32(body + end))


def split(dump):
    """(header, [(tag, payload)], end) of a well-formed dump."""
    pos = 24
    sections = []
    while True:
        tag = dump[pos]
        pos += 1
        length, shift = 0, 0
        while True:
            b = dump[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if tag == 0:
            return dump[:24], sections
        sections.append((tag, dump[pos:pos + length]))
        pos += length


def join(head, sections):
    return seal(head + b"".join(section(t, p) for t, p in sections))
