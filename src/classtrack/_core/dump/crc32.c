/* crc32.c - the dump's checksum: CRC-32 of IEEE 802.3, as zlib computes
 * it (reflected polynomial 0xEDB88320, pre- and post-inverted).
 *
 * Two implementations that give the same result for every input:
 *
 *  - slicing by 8, portable: table k maps a byte to its crc as if followed
 *    by k zero bytes, so eight input bytes cost eight lookups and no
 *    data-dependent shift chain (about 3 GB/s here).  Bytes are read one
 *    by one, so the result does not depend on the machine's byte order.
 *  - carry-less multiplication folding on x86-64 CPUs with PCLMULQDQ
 *    (every x86-64 CPU since 2010), chosen at run time: four 128-bit lanes
 *    are folded forward over 64 bytes per step, then into one lane, and
 *    the 16 bytes of that lane finish through the table (ten times the
 *    speed of the tables: the dump's CRC was an eighth of a load).
 *
 * Why folding works: in the reflected domain a 128-bit lane L followed by
 * D bits of message is congruent, modulo the polynomial P, to
 * L.lo * x^(D+32+64) + L.hi * x^(D+32) moved D bits on; multiplying each
 * 64-bit half by the constant (x^(D+32) mod P or x^(D-32) mod P, bit-
 * reflected and shifted left once) gives two products of at most 96 bits
 * that, xored into the lane D bits further on, keep the remainder the same.
 * The constants are derived in tests/test_dump_crc.py, which also checks
 * both implementations against zlib.crc32 at every length and alignment
 * up to a few blocks.
 *
 * The tables are filled on first use, under the GIL (every caller holds
 * it); the CPU check is made once, also under the GIL.
 */
#include "dump/dumpfmt.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CT_CRC_CLMUL 1
#include <immintrin.h>
#endif

static uint32_t crc_table[8][256];

static void
crc_init(void)
{
    if (crc_table[0][1] != 0) {
        return;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = crc_table[t - 1][i];
            crc_table[t][i] = (c >> 8) ^ crc_table[0][c & 0xff];
        }
    }
}

/* The register (not inverted) after `len` more bytes. */
static uint32_t
crc_tables(uint32_t crc, const unsigned char *buf, size_t len)
{
    while (len >= 8) {
        uint32_t a = crc ^ ((uint32_t)buf[0] | (uint32_t)buf[1] << 8
                            | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24);
        uint32_t b = (uint32_t)buf[4] | (uint32_t)buf[5] << 8
                     | (uint32_t)buf[6] << 16 | (uint32_t)buf[7] << 24;
        crc = crc_table[7][a & 0xff] ^ crc_table[6][(a >> 8) & 0xff]
              ^ crc_table[5][(a >> 16) & 0xff] ^ crc_table[4][a >> 24]
              ^ crc_table[3][b & 0xff] ^ crc_table[2][(b >> 8) & 0xff]
              ^ crc_table[1][(b >> 16) & 0xff] ^ crc_table[0][b >> 24];
        buf += 8;
        len -= 8;
    }
    while (len-- > 0) {
        crc = crc_table[0][(crc ^ *buf++) & 0xff] ^ (crc >> 8);
    }
    return crc;
}

#ifdef CT_CRC_CLMUL

/* lane * (k.lo for its low half, k.hi for its high half), folded into
 * the data 16 bytes that follow the distance the constants stand for */
__attribute__((target("pclmul,sse2")))
static inline __m128i
fold(__m128i lane, __m128i k, __m128i data)
{
    __m128i lo = _mm_clmulepi64_si128(lane, k, 0x00);
    __m128i hi = _mm_clmulepi64_si128(lane, k, 0x11);
    return _mm_xor_si128(_mm_xor_si128(lo, hi), data);
}

/* The register after `len` (>= 64) more bytes. */
__attribute__((target("pclmul,sse2")))
static uint32_t
crc_clmul(uint32_t crc, const unsigned char *buf, size_t len)
{
    /* distance 512 bits (four lanes on), then 128 bits (one lane on) */
    const __m128i k512 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);
    const __m128i k128 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);
    __m128i x0 = _mm_loadu_si128((const __m128i *)(const void *)buf);
    __m128i x1 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 32));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 48));
    /* the register so far stands in for the first four bytes' prefix */
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)crc));
    buf += 64;
    len -= 64;
    while (len >= 64) {
        x0 = fold(x0, k512, _mm_loadu_si128((const __m128i *)(const void *)buf));
        x1 = fold(x1, k512, _mm_loadu_si128((const __m128i *)(const void *)(buf + 16)));
        x2 = fold(x2, k512, _mm_loadu_si128((const __m128i *)(const void *)(buf + 32)));
        x3 = fold(x3, k512, _mm_loadu_si128((const __m128i *)(const void *)(buf + 48)));
        buf += 64;
        len -= 64;
    }
    x0 = fold(x0, k128, x1);
    x0 = fold(x0, k128, x2);
    x0 = fold(x0, k128, x3);
    while (len >= 16) {
        x0 = fold(x0, k128, _mm_loadu_si128((const __m128i *)(const void *)buf));
        buf += 16;
        len -= 16;
    }
    /* the lane is congruent to everything read: its 16 bytes, little-
     * endian as in memory, through the tables from a zero register */
    unsigned char lane[16];
    _mm_storeu_si128((__m128i *)(void *)lane, x0);
    crc = crc_tables(0, lane, 16);
    return crc_tables(crc, buf, len);
}

/* 1 when the CPU has PCLMULQDQ, 0 when not, -1 before the first look */
static int have_clmul = -1;

#endif

uint32_t
ct_crc32_portable(uint32_t crc, const unsigned char *buf, size_t len)
{
    crc_init();
    return ~crc_tables(~crc, buf, len);
}

uint32_t
ct_crc32(uint32_t crc, const unsigned char *buf, size_t len)
{
    crc_init();
#ifdef CT_CRC_CLMUL
    if (have_clmul < 0) {
        __builtin_cpu_init();
        have_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse2");
    }
    if (have_clmul && len >= 64) {
        return ~crc_clmul(~crc, buf, len);
    }
#endif
    return ~crc_tables(~crc, buf, len);
}
