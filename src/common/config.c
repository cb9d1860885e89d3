/* config.c — Kafka-style .properties parsing against a schema; every rejection names
 * "source:line" so an operator can fix the file without guessing. */
#include "keel/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "keel/buf.h"
#include "keel/err.h"

#define OVERRIDE_NAME "--override"

struct kl_config {
    const kl_config_key_t *schema;
    size_t n_keys;
    char **value; /* explicitly set value per schema key; NULL = unset */
};

/* One load (file, string or override). Values are staged and committed only when
 * the whole input is valid, so a rejected file leaves the config unchanged. */
typedef struct cfg_load {
    const kl_config_t *c;
    const char *name;
    char **pending;
    int *line; /* line each pending key was set on, for duplicate reports */
    char *err;
    size_t errlen;
} cfg_load_t;

static void cfg_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cfg_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "name:line: reason", or "name: reason" for inputs without lines (overrides). */
static int load_error(const cfg_load_t *l, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int load_error(const cfg_load_t *l, int line, const char *fmt, ...)
{
    char reason[KL_CONFIG_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (line > 0)
        cfg_error(l->err, l->errlen, "%s:%d: %s", l->name, line, reason);
    else
        cfg_error(l->err, l->errlen, "%s: %s", l->name, reason);
    return KL_ECONFIG;
}

static long key_index(const kl_config_t *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->n_keys; i++)
        if (strlen(c->schema[i].name) == len && memcmp(c->schema[i].name, name, len) == 0)
            return (long)i;
    return -1;
}

/* Strict decimal int64: optional sign, digits only. KL_EINVAL for junk,
 * KL_ERANGE when the number does not fit. */
static int parse_int(const char *s, int64_t *out)
{
    int neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    if (!*s) return KL_EINVAL;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    int overflow = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return KL_EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (limit - d) / 10) overflow = 1;
        else v = v * 10 + d;
    }
    if (overflow) return KL_ERANGE;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    if (strcasecmp(s, "true") == 0) *out = true;
    else if (strcasecmp(s, "false") == 0) *out = false;
    else return KL_EINVAL;
    return 0;
}

/* Checks a value against its key's type; on failure writes the reason. */
static int check_value(const kl_config_key_t *k, const char *v, char *why, size_t whylen)
{
    int64_t i;
    bool b;
    int rc;
    switch (k->type) {
    case KL_CFG_INT:
        rc = parse_int(v, &i);
        if (rc == KL_EINVAL) {
            snprintf(why, whylen, "'%s' must be an integer, got '%s'", k->name, v);
            return KL_ECONFIG;
        }
        if (rc == KL_ERANGE || i < k->min || i > k->max) {
            snprintf(why, whylen, "'%s' must be between %lld and %lld, got %s", k->name,
                     (long long)k->min, (long long)k->max, v);
            return KL_ECONFIG;
        }
        return 0;
    case KL_CFG_BOOL:
        if (parse_bool(v, &b) != 0) {
            snprintf(why, whylen, "'%s' must be true or false", k->name);
            return KL_ECONFIG;
        }
        return 0;
    case KL_CFG_STRING:
    case KL_CFG_LIST:
        return 0;
    }
    KL_ASSERT(!"unknown config type");
}

kl_config_t *kl_config_new(const kl_config_key_t *schema)
{
    KL_ASSERT(schema != NULL);
    kl_config_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->schema = schema;
    while (schema[c->n_keys].name) {
        /* A bad default is a bug in the schema, not in the operator's file. */
        const kl_config_key_t *k = &schema[c->n_keys];
        char why[KL_CONFIG_ERR_LEN];
        KL_ASSERT(k->type != KL_CFG_INT || k->min <= k->max);
        KL_ASSERT(!k->default_value || check_value(k, k->default_value, why, sizeof why) == 0);
        KL_ASSERT(key_index(c, k->name, strlen(k->name)) == -1); /* names are unique */
        c->n_keys++;
    }
    c->value = calloc(c->n_keys ? c->n_keys : 1, sizeof *c->value);
    if (!c->value) {
        free(c);
        return NULL;
    }
    return c;
}

void kl_config_free(kl_config_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n_keys; i++) free(c->value[i]);
    free(c->value);
    free(c);
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\f' || ch == '\r';
}

/* Parses one logical line "key=value" / "key: value" into the staged values. */
static int load_pair(cfg_load_t *l, int line, const char *s, size_t n)
{
    size_t sep = 0;
    while (sep < n && s[sep] != '=' && s[sep] != ':') sep++;
    size_t ks = 0, ke = sep;
    while (ks < ke && is_blank(s[ks])) ks++;
    while (ke > ks && is_blank(s[ke - 1])) ke--;
    if (sep == n) return load_error(l, line, "missing '=' or ':' after key");
    if (ks == ke) return load_error(l, line, "missing key before '%c'", s[sep]);
    size_t vs = sep + 1, ve = n;
    while (vs < ve && is_blank(s[vs])) vs++;
    while (ve > vs && is_blank(s[ve - 1])) ve--;

    long idx = key_index(l->c, s + ks, ke - ks);
    if (idx < 0) return load_error(l, line, "unknown key '%.*s'", (int)(ke - ks), s + ks);
    const kl_config_key_t *k = &l->c->schema[idx];
    if (l->pending[idx])
        return load_error(l, line, "duplicate key '%s' (first set on line %d)", k->name,
                          l->line[idx]);
    char *v = strndup(s + vs, ve - vs);
    if (!v) return KL_ENOMEM;
    char why[KL_CONFIG_ERR_LEN];
    if (check_value(k, v, why, sizeof why) != 0) {
        free(v);
        return load_error(l, line, "%s", why);
    }
    l->pending[idx] = v;
    l->line[idx] = line;
    return 0;
}

/* Walks physical lines: comments and blanks are skipped, a line ending in an odd
 * number of backslashes continues on the next one (whose leading blanks are
 * dropped), as in java.util.Properties. Other backslashes are kept literally. */
static int load_text(cfg_load_t *l, const char *text, size_t len)
{
    kl_buf_t logical;
    kl_buf_init(&logical, KL_CONFIG_MAX_FILE_BYTES);
    size_t pos = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && pos < len) {
        int first = 0;
        bool cont = true;
        kl_buf_reset(&logical);
        while (cont && pos < len) {
            const char *s = text + pos;
            const char *nl = memchr(s, '\n', len - pos);
            size_t n = nl ? (size_t)(nl - s) : len - pos;
            pos += n + (nl != NULL);
            lineno++;
            if (n > 0 && s[n - 1] == '\r') n--; /* CRLF files */
            if (memchr(s, '\0', n)) {
                rc = load_error(l, lineno, "contains a NUL byte");
                break;
            }
            while (n > 0 && is_blank(*s)) s++, n--;
            if (!first) {
                if (n == 0 || *s == '#' || *s == '!') break; /* comments never continue */
                first = lineno;
            }
            size_t bs = 0;
            while (bs < n && s[n - 1 - bs] == '\\') bs++;
            cont = bs % 2 == 1;
            rc = kl_buf_append(&logical, s, n - cont);
            if (rc) break;
        }
        if (rc == 0 && first) rc = load_pair(l, first, (const char *)logical.data, logical.len);
    }
    kl_buf_free(&logical);
    return rc;
}

/* Runs one load with staging, committing only if every line was accepted. */
static int load_run(kl_config_t *c, const char *name, bool one_pair, const char *text, size_t len,
                    char *err, size_t errlen)
{
    size_t slots = c->n_keys ? c->n_keys : 1;
    cfg_load_t l = {c, name, calloc(slots, sizeof(char *)), calloc(slots, sizeof(int)), err,
                    errlen};
    int rc = KL_ENOMEM;
    if (l.pending && l.line) {
        rc = one_pair ? load_pair(&l, 0, text, len) : load_text(&l, text, len);
    }
    if (rc == KL_ENOMEM) cfg_error(err, errlen, "%s: out of memory", name);
    for (size_t i = 0; l.pending && i < c->n_keys; i++) {
        if (rc == 0 && l.pending[i]) {
            free(c->value[i]);
            c->value[i] = l.pending[i];
        } else {
            free(l.pending[i]);
        }
    }
    free(l.pending);
    free(l.line);
    return rc;
}

int kl_config_load_string(kl_config_t *c, const char *name, const char *text, char *err,
                          size_t errlen)
{
    size_t len = strnlen(text, KL_CONFIG_MAX_FILE_BYTES + 1);
    if (len > KL_CONFIG_MAX_FILE_BYTES) {
        cfg_error(err, errlen, "%s: larger than %u bytes", name, KL_CONFIG_MAX_FILE_BYTES);
        return KL_ETOOBIG;
    }
    return load_run(c, name, false, text, len, err, errlen);
}

int kl_config_load_file(kl_config_t *c, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cfg_error(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return KL_ECONFIG;
    }
    /* One byte past the limit tells "exactly at the limit" from "too big". */
    char *text = malloc(KL_CONFIG_MAX_FILE_BYTES + 1);
    if (!text) {
        close(fd);
        cfg_error(err, errlen, "%s: out of memory", path);
        return KL_ENOMEM;
    }
    size_t len = 0;
    int rc = 0;
    while (len <= KL_CONFIG_MAX_FILE_BYTES) {
        ssize_t got = read(fd, text + len, KL_CONFIG_MAX_FILE_BYTES + 1 - len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            cfg_error(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            rc = KL_ECONFIG;
            break;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    close(fd);
    if (rc == 0 && len > KL_CONFIG_MAX_FILE_BYTES) {
        cfg_error(err, errlen, "%s: larger than %u bytes", path, KL_CONFIG_MAX_FILE_BYTES);
        rc = KL_ETOOBIG;
    }
    if (rc == 0) rc = load_run(c, path, false, text, len, err, errlen);
    free(text);
    return rc;
}

int kl_config_set(kl_config_t *c, const char *kv, char *err, size_t errlen)
{
    return load_run(c, OVERRIDE_NAME, true, kv, strlen(kv), err, errlen);
}

int kl_config_validate(const kl_config_t *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->n_keys; i++) {
        const kl_config_key_t *k = &c->schema[i];
        if (k->required && !c->value[i] && !k->default_value) {
            cfg_error(err, errlen, "missing required key '%s'", k->name);
            return KL_ECONFIG;
        }
    }
    return 0;
}

static size_t key_lookup(const kl_config_t *c, const char *key)
{
    long idx = key_index(c, key, strlen(key));
    KL_ASSERT(idx >= 0); /* reading a key outside the schema is a bug */
    return (size_t)idx;
}

const char *kl_config_str(const kl_config_t *c, const char *key)
{
    size_t i = key_lookup(c, key);
    return c->value[i] ? c->value[i] : c->schema[i].default_value;
}

int64_t kl_config_int(const kl_config_t *c, const char *key)
{
    size_t i = key_lookup(c, key);
    KL_ASSERT(c->schema[i].type == KL_CFG_INT);
    const char *v = c->value[i] ? c->value[i] : c->schema[i].default_value;
    KL_ASSERT(v != NULL); /* optional int without default: check kl_config_is_set first */
    int64_t x = 0;
    KL_ASSERT(parse_int(v, &x) == 0); /* values were checked when set */
    return x;
}

bool kl_config_bool(const kl_config_t *c, const char *key)
{
    size_t i = key_lookup(c, key);
    KL_ASSERT(c->schema[i].type == KL_CFG_BOOL);
    const char *v = c->value[i] ? c->value[i] : c->schema[i].default_value;
    KL_ASSERT(v != NULL); /* optional bool without default: check kl_config_is_set first */
    bool b = false;
    KL_ASSERT(parse_bool(v, &b) == 0);
    return b;
}

bool kl_config_is_set(const kl_config_t *c, const char *key)
{
    return c->value[key_lookup(c, key)] != NULL;
}
