/* crc32c: CRC-32C with the SSE4.2 instruction (x86-64) and a slicing-by-8 table fallback.
 *
 * Both paths process the unaligned head bytewise, then 8 bytes at a time, then the tail, on the
 * inverted register (so the running value is the finished CRC, as zlib does it). The table path needs a
 * little-endian load for its 8-byte step; on big-endian hosts it falls back to the bytewise loop. */
#include "core/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define LP_CRC32C_X86 1
#endif

#define POLY 0x82F63B78u /* Castagnoli, reflected */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    // table[k][i]: the CRC contribution of byte i followed by k zero bytes (slicing-by-8).
    for (int k = 1; k < 8; k++)
        for (int i = 0; i < 256; i++) table[k][i] = (table[k - 1][i] >> 8) ^ table[0][table[k - 1][i] & 0xff];
}

uint32_t lp_crc32c_update_table(uint32_t crc, const void *buf, size_t n) {
    pthread_once(&table_once, table_build);
    const uint8_t *p = buf;
    uint32_t c = ~crc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (n && ((uintptr_t)p & 7)) {
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= c;
        c = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
            table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
            table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        n -= 8;
    }
#endif
    while (n--) c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

#ifdef LP_CRC32C_X86
__attribute__((target("sse4.2"))) uint32_t lp_crc32c_update_hw(uint32_t crc, const void *buf, size_t n) {
    const uint8_t *p = buf;
    uint32_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8(c, *p++);
        n--;
    }
#if defined(__x86_64__)
    uint64_t c64 = c;
    // Four independent loads per iteration; the crc32 instruction itself is the dependency chain.
    while (n >= 32) {
        uint64_t w[4];
        memcpy(w, p, 32);
        c64 = _mm_crc32_u64(c64, w[0]);
        c64 = _mm_crc32_u64(c64, w[1]);
        c64 = _mm_crc32_u64(c64, w[2]);
        c64 = _mm_crc32_u64(c64, w[3]);
        p += 32;
        n -= 32;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
#else
    while (n >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        c = _mm_crc32_u32(c, w);
        p += 4;
        n -= 4;
    }
#endif
    while (n--) c = _mm_crc32_u8(c, *p++);
    return ~c;
}

int lp_crc32c_have_hw(void) {
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}
#else
uint32_t lp_crc32c_update_hw(uint32_t crc, const void *buf, size_t n) {
    return lp_crc32c_update_table(crc, buf, n); /* never selected: lp_crc32c_have_hw() is 0 */
}

int lp_crc32c_have_hw(void) {
    return 0;
}
#endif

uint32_t lp_crc32c_update(uint32_t crc, const void *buf, size_t n) {
    return lp_crc32c_have_hw() ? lp_crc32c_update_hw(crc, buf, n) : lp_crc32c_update_table(crc, buf, n);
}

uint32_t lp_crc32c(const void *buf, size_t n) {
    return lp_crc32c_update(0, buf, n);
}
