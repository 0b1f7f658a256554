/* crc32c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord framing and of
 * checkpoint tensors. It lives in core/ because core/ckpt needs it too, and core/ includes nothing from
 * the folders above it.
 *
 * lp_crc32c_update() picks the SSE4.2 `crc32` instruction when the CPU has it (detected once at run
 * time) and a slicing-by-8 table otherwise; both paths give identical results and are exported so tests
 * can compare them. The running value is the *finished* CRC, as with zlib's crc32(): start from 0 and
 * chain calls over consecutive pieces,
 *
 *     uint32_t c = lp_crc32c_update(0, a, na);
 *     c = lp_crc32c_update(c, b, nb);          // == CRC-32C of a||b
 *
 * The check value is lp_crc32c_update(0, "123456789", 9) == 0xE3069283.
 *
 * TFRecord stores CRCs masked (so that a CRC of data that itself contains CRCs is not degenerate):
 * mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8; lp_crc32c_unmask() inverts it. */
#ifndef LP_CRC32C_H
#define LP_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* CRC-32C of buf[0..n) continued from `crc` (0 to start). Fastest available implementation. */
uint32_t lp_crc32c_update(uint32_t crc, const void *buf, size_t n);

/* Shorthand for lp_crc32c_update(0, buf, n). */
uint32_t lp_crc32c(const void *buf, size_t n);

/* The two implementations behind lp_crc32c_update (same contract). _hw must only be called when
 * lp_crc32c_have_hw() is non-zero. */
uint32_t lp_crc32c_update_table(uint32_t crc, const void *buf, size_t n);
uint32_t lp_crc32c_update_hw(uint32_t crc, const void *buf, size_t n);

/* Non-zero when the CPU has SSE4.2 (and the hardware path is used). */
int lp_crc32c_have_hw(void);

/* TensorFlow's masking of stored CRCs, and its inverse. */
static inline uint32_t lp_crc32c_mask(uint32_t crc) {
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
static inline uint32_t lp_crc32c_unmask(uint32_t masked) {
    uint32_t rot = masked - 0xa282ead8u;
    return (rot >> 17) | (rot << 15);
}

#endif
