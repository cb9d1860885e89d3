/* uuid.c — random 128-bit ids and their Kafka text form (unpadded base64url, 22 chars). */
#include "keel/uuid.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "keel/err.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '-') return 62;
    if (ch == '_') return 63;
    return -1;
}

static int is_zero(const uint8_t u[KL_UUID_LEN])
{
    uint8_t acc = 0;
    for (int i = 0; i < KL_UUID_LEN; i++) acc |= u[i];
    return acc == 0;
}

static int fill_random(uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return KL_EIO;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

int kl_uuid_random(uint8_t out[KL_UUID_LEN])
{
    /* Like Kafka's Uuid.randomUuid: RFC 4122 version 4, never zero, and never text
     * starting with '-' (it would look like a command-line flag). */
    do {
        int rc = fill_random(out, KL_UUID_LEN);
        if (rc) return rc;
        out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
        out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
    } while (is_zero(out) || (out[0] >> 2) == 62);
    return 0;
}

void kl_uuid_to_string(const uint8_t u[KL_UUID_LEN], char *out)
{
    char *o = out;
    int i = 0;
    for (; i + 3 <= KL_UUID_LEN; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16 | (uint32_t)u[i + 1] << 8 | u[i + 2];
        *o++ = b64url[v >> 18];
        *o++ = b64url[(v >> 12) & 63];
        *o++ = b64url[(v >> 6) & 63];
        *o++ = b64url[v & 63];
    }
    /* 16 = 5*3 + 1: the last byte becomes two chars, the second with 4 zero bits. */
    *o++ = b64url[u[i] >> 2];
    *o++ = b64url[(u[i] & 3) << 4];
    *o = '\0';
}

int kl_uuid_parse(const char *s, uint8_t out[KL_UUID_LEN])
{
    if (!s || strlen(s) != KL_UUID_STR_LEN) return KL_EINVAL;
    int v[KL_UUID_STR_LEN];
    for (int k = 0; k < KL_UUID_STR_LEN; k++)
        if ((v[k] = b64url_value(s[k])) < 0) return KL_EINVAL;
    /* The last char carries only 2 bits; non-zero padding bits mean a non-canonical form. */
    if (v[KL_UUID_STR_LEN - 1] & 15) return KL_EINVAL;
    uint8_t u[KL_UUID_LEN];
    int i = 0, k = 0;
    for (; i + 3 <= KL_UUID_LEN; i += 3, k += 4) {
        uint32_t w = (uint32_t)v[k] << 18 | (uint32_t)v[k + 1] << 12 | (uint32_t)v[k + 2] << 6 |
                     (uint32_t)v[k + 3];
        u[i] = (uint8_t)(w >> 16);
        u[i + 1] = (uint8_t)(w >> 8);
        u[i + 2] = (uint8_t)w;
    }
    u[i] = (uint8_t)(v[k] << 2 | v[k + 1] >> 4);
    if (is_zero(u)) return KL_EINVAL;
    memcpy(out, u, KL_UUID_LEN);
    return 0;
}
