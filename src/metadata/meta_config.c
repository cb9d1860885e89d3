/* meta_config.c — the dynamic topic/cluster configs Keel knows: validation, canonical text, typed reads. */
#include <stdio.h>
#include <string.h>

#include "keel/err.h"
#include "meta_internal.h"

typedef enum { KIND_BOOL, KIND_INT } kind_t;

/* Kafka's names, types and lower bounds (TopicConfig / LogConfig). */
static const struct known {
    const char *key;
    kind_t kind;
    int64_t min, max;
} known[] = {
    {META_CFG_MIN_INSYNC_REPLICAS, KIND_INT, 1, INT32_MAX},
    {META_CFG_RETENTION_MS, KIND_INT, -1, INT64_MAX},
    {META_CFG_RETENTION_BYTES, KIND_INT, -1, INT64_MAX},
    {META_CFG_UNCLEAN_ELECTION, KIND_BOOL, 0, 1},
    {META_CFG_SEGMENT_BYTES, KIND_INT, 14, INT32_MAX},
    {META_CFG_SEGMENT_MS, KIND_INT, 1, INT64_MAX},
    {META_CFG_MAX_MESSAGE_BYTES, KIND_INT, 0, INT32_MAX},
};

/* Kafka parses booleans case-insensitively. */
static bool parse_bool(const char *s, bool *out)
{
    static const char *const words[2] = {"false", "true"};
    for (int w = 0; w < 2; w++) {
        size_t i = 0;
        for (; words[w][i] && s[i]; i++) {
            char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
            if (c != words[w][i]) break;
        }
        if (!words[w][i] && !s[i]) {
            *out = w == 1;
            return true;
        }
    }
    return false;
}

static const struct known *find_known(const char *key)
{
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i].key, key) == 0) return &known[i];
    return NULL;
}

bool meta_config_known(const char *key)
{
    return find_known(key) != NULL;
}

int meta_config_canonical(const char *key, const char *value, char out[META_MAX_CONFIG_VALUE_LEN + 1], char *why,
                          size_t why_len)
{
    const struct known *k = find_known(key);
    if (!k) return meta_why(why, why_len, KL_EINVAL, "unknown config %.*s", META_MAX_CONFIG_KEY_LEN, key);
    if (strnlen(value, META_MAX_CONFIG_VALUE_LEN + 1) > META_MAX_CONFIG_VALUE_LEN)
        return meta_why(why, why_len, KL_EINVAL, "%s: value longer than %d", key, META_MAX_CONFIG_VALUE_LEN);
    if (k->kind == KIND_BOOL) {
        bool b;
        if (!parse_bool(value, &b)) return meta_why(why, why_len, KL_EINVAL, "%s must be true or false", key);
        snprintf(out, META_MAX_CONFIG_VALUE_LEN + 1, "%s", b ? "true" : "false");
        return 0;
    }
    int64_t v;
    if (!meta_parse_int64(value, &v) || v < k->min || v > k->max)
        return meta_why(why, why_len, KL_EINVAL, "%s must be an integer in [%lld, %lld]", key, (long long)k->min,
                        (long long)k->max);
    snprintf(out, META_MAX_CONFIG_VALUE_LEN + 1, "%lld", (long long)v);
    return 0;
}

bool meta_image_config_bool(const meta_image_t *img, const meta_topic_t *topic, const char *key, bool dflt)
{
    const char *v = meta_image_config(img, topic, key);
    bool b;
    return v && parse_bool(v, &b) ? b : dflt;
}

int64_t meta_image_config_int(const meta_image_t *img, const meta_topic_t *topic, const char *key, int64_t dflt)
{
    const char *v = meta_image_config(img, topic, key);
    int64_t n;
    return v && meta_parse_int64(v, &n) ? n : dflt;
}
