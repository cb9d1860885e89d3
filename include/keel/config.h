/* config.h — Kafka-style .properties parser with a schema: unknown keys and
 * malformed values are rejected with "file:line: reason". */
#ifndef KEEL_CONFIG_H
#define KEEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KL_CONFIG_ERR_LEN 512
#define KL_CONFIG_MAX_FILE_BYTES (1024u * 1024u) /* larger inputs: KL_ETOOBIG */

typedef enum kl_config_type {
    KL_CFG_STRING,
    KL_CFG_INT,  /* int64, decimal, with [min, max] */
    KL_CFG_BOOL, /* true|false */
    KL_CFG_LIST  /* comma separated, kept as one string; checked by the caller */
} kl_config_type_t;

typedef struct kl_config_key {
    const char *name;
    kl_config_type_t type;
    const char *default_value; /* NULL = no default (then `required` matters) */
    bool required;
    int64_t min, max; /* KL_CFG_INT bounds (inclusive) */
    const char *doc;  /* one line, shown in docs and errors */
} kl_config_key_t;

typedef struct kl_config kl_config_t;

/* Schema is an array terminated by an entry with name == NULL; it must
 * outlive the config. */
kl_config_t *kl_config_new(const kl_config_key_t *schema);
void kl_config_free(kl_config_t *c);
/* Parse a file: `key=value` or `key: value` lines, `#`/`!` comments, blank
 * lines, surrounding whitespace trimmed, backslash line continuation. Errors
 * (unknown key, duplicate key, bad int/bool, out of range, unreadable file)
 * return KL_ECONFIG with "path:line: reason" in err; KL_ETOOBIG past
 * KL_CONFIG_MAX_FILE_BYTES. A rejected input leaves the config unchanged. */
int kl_config_load_file(kl_config_t *c, const char *path, char *err, size_t errlen);
/* Parse from memory (name used in messages). */
int kl_config_load_string(kl_config_t *c, const char *name, const char *text, char *err,
                          size_t errlen);
/* "key=value" override (later wins over file); errors read "--override: reason". */
int kl_config_set(kl_config_t *c, const char *kv, char *err, size_t errlen);
/* After loading: checks required keys; KL_ECONFIG with the missing key named. */
int kl_config_validate(const kl_config_t *c, char *err, size_t errlen);
/* Accessors; the key must be in the schema (asserted). Defaults apply.
 * kl_config_int/bool also assert the key's type and that it has a value
 * (set, defaulted, or required and validated). */
const char *kl_config_str(const kl_config_t *c, const char *key); /* NULL if unset, no default */
int64_t kl_config_int(const kl_config_t *c, const char *key);
bool kl_config_bool(const kl_config_t *c, const char *key);
bool kl_config_is_set(const kl_config_t *c, const char *key); /* explicitly set */

#endif
