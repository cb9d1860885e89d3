/* crc32c.h — CRC-32C (Castagnoli), as Kafka's RecordBatch v2 uses. */
#ifndef KEEL_CRC32C_H
#define KEEL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc = kl_crc32c(0, p, n) for a whole buffer; pass a previous result to continue. */
uint32_t kl_crc32c(uint32_t crc, const void *p, size_t n);

#endif
