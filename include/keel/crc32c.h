/* crc32c.h — CRC-32C (Castagnoli), as Kafka's RecordBatch v2 uses. */
#ifndef KEEL_CRC32C_H
#define KEEL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc = kl_crc32c(0, p, n) for a whole buffer; pass a previous result to continue. */
uint32_t kl_crc32c(uint32_t crc, const void *p, size_t n);
/* The portable slicing-by-8 path, exposed so tests can check it against the
 * SSE4.2 path; kl_crc32c picks the fastest one the CPU supports. */
uint32_t kl_crc32c_sw(uint32_t crc, const void *p, size_t n);
int kl_crc32c_hw_available(void); /* 1 if kl_crc32c uses the CPU's crc32 instruction */

#endif
