"""The dump's checksum (crc32.c): zlib's CRC-32, by carry-less
multiplication where the CPU has it and by tables elsewhere."""
import os
import re
import zlib
from pathlib import Path

import pytest

from classtrack import _core

CRC_C = Path(__file__).resolve().parent.parent / "src" / "classtrack" / "_core" / "dump" / "crc32.c"


def _xpow_mod(n):
    """x**n modulo the CRC-32 polynomial, as an int of its coefficients."""
    poly, r = 0x104C11DB7, 1
    for _ in range(n):
        r <<= 1
        if r >> 32 & 1:
            r ^= poly
    return r


def _reflected(v):
    return int(format(v, "032b")[::-1], 2)


@pytest.mark.parametrize("portable", [False, True])
def test_every_length_and_alignment_matches_zlib(portable):
    data = os.urandom(600)
    for n in range(0, 300):
        for off in (0, 1, 7, 13):
            chunk = data[off:off + n]
            for start in (0, 0xDEADBEEF):
                assert _core.crc32(chunk, start, portable=portable) == zlib.crc32(chunk, start), \
                    (n, off, start)


@pytest.mark.parametrize("portable", [False, True])
def test_large_and_chained_inputs_match_zlib(portable):
    data = os.urandom(3 * 1024 * 1024 + 77)
    assert _core.crc32(data, portable=portable) == zlib.crc32(data)
    # a crc carried across pieces of every size gives the whole's
    crc, pos = 0, 0
    for size in (1, 63, 64, 65, 1000, 4096, 100_000):
        crc = _core.crc32(data[pos:pos + size], crc, portable=portable)
        pos += size
    crc = _core.crc32(data[pos:], crc, portable=portable)
    assert crc == zlib.crc32(data)


def test_patterns_that_stress_the_folding():
    for byte in (b"\x00", b"\xff", b"\x80", b"\x01"):
        for n in (64, 127, 128, 1024, 65536 + 15):
            assert _core.crc32(byte * n) == zlib.crc32(byte * n)


def test_folding_constants_are_the_documented_powers_of_x():
    """crc32.c's constants are x^(D+32) and x^(D-32) mod P, bit-reflected
    and shifted left once, for D = 512 (four lanes) and 128 (one lane)."""
    src = CRC_C.read_text()
    k512 = re.search(r"k512 = _mm_set_epi64x\((0x[0-9a-f]+)LL, (0x[0-9a-f]+)LL\)", src)
    k128 = re.search(r"k128 = _mm_set_epi64x\((0x[0-9a-f]+)LL, (0x[0-9a-f]+)LL\)", src)
    assert k512 and k128
    for m, d in ((k512, 512), (k128, 128)):
        hi, lo = int(m.group(1), 16), int(m.group(2), 16)
        assert lo == _reflected(_xpow_mod(d + 32)) << 1
        assert hi == _reflected(_xpow_mod(d - 32)) << 1


def test_bad_arguments():
    with pytest.raises(TypeError):
        _core.crc32("text")
    with pytest.raises(OverflowError):
        _core.crc32(b"", -1)
