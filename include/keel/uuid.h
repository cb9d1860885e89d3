/* uuid.h — 128-bit random ids in Kafka's text form (22 chars of unpadded base64url). */
#ifndef KEEL_UUID_H
#define KEEL_UUID_H

#include <stdint.h>

#define KL_UUID_LEN 16
#define KL_UUID_STR_LEN 22 /* without the NUL */

/* Random v4-style uuid from getrandom(); never the all-zero uuid. */
int kl_uuid_random(uint8_t out[KL_UUID_LEN]);
/* out must hold KL_UUID_STR_LEN + 1 bytes. */
void kl_uuid_to_string(const uint8_t u[KL_UUID_LEN], char *out);
/* KL_EINVAL unless s is exactly 22 base64url chars decoding to 16 bytes
 * (and not the all-zero uuid, which Kafka reserves). */
int kl_uuid_parse(const char *s, uint8_t out[KL_UUID_LEN]);

#endif
