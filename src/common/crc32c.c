/* crc32c.c — CRC-32C (Castagnoli, reflected, poly 0x82F63B78): SSE4.2 when the CPU has it,
 * slicing-by-8 tables otherwise. */
#include "keel/crc32c.h"

#include <pthread.h>
#include <string.h>


#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

/* crc_table[k][b] is the CRC of byte b followed by k zero bytes, which lets the
 * software path fold eight input bytes per step. */
static void crc_table_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        crc_table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            crc_table[k][b] = (crc_table[k - 1][b] >> 8) ^ crc_table[0][crc_table[k - 1][b] & 0xff];
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

uint32_t kl_crc32c_sw(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&crc_table_once, crc_table_init);
    const uint8_t *p = buf;
    uint32_t c = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w = load_le64(p) ^ c;
        c = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
            crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
            crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
            crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
    }
    while (n--) c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return ~c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *buf,
                                                              size_t n)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    /* Byte steps up to 8-byte alignment so the wide loads do not straddle lines. */
    for (; n && ((uintptr_t)p & 7); n--) c = _mm_crc32_u8((uint32_t)c, *p++);
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, sizeof w);
        c = _mm_crc32_u64(c, w);
    }
    while (n--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

int kl_crc32c_hw_available(void)
{
    return __builtin_cpu_supports("sse4.2") != 0;
}

uint32_t kl_crc32c(uint32_t crc, const void *p, size_t n)
{
    return kl_crc32c_hw_available() ? crc32c_sse42(crc, p, n) : kl_crc32c_sw(crc, p, n);
}
#else
int kl_crc32c_hw_available(void)
{
    return 0;
}

uint32_t kl_crc32c(uint32_t crc, const void *p, size_t n)
{
    return kl_crc32c_sw(crc, p, n);
}
#endif
