/* log.h — leveled logging to stderr: "<ISO time> <LEVEL> [node N] <module>: message". */
#ifndef KEEL_LOG_H
#define KEEL_LOG_H

typedef enum kl_log_level {
    KL_LOG_DEBUG = 0,
    KL_LOG_INFO = 1,
    KL_LOG_WARN = 2,
    KL_LOG_ERROR = 3,
    KL_LOG_OFF = 4
} kl_log_level_t;

/* Longest line written, newline included; longer messages are cut and end in "...". */
#define KL_LOG_LINE_MAX 4096

void kl_log_set_level(kl_log_level_t lvl);
kl_log_level_t kl_log_get_level(void);
/* Parses "debug|info|warn|error|off" (case-insensitive); KL_EINVAL otherwise. */
int kl_log_parse_level(const char *s, kl_log_level_t *out);
void kl_log_set_node(int node_id); /* -1: omit the node tag */
void kl_log_write(kl_log_level_t lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define KL_DEBUG(mod, ...) kl_log_write(KL_LOG_DEBUG, mod, __VA_ARGS__)
#define KL_INFO(mod, ...) kl_log_write(KL_LOG_INFO, mod, __VA_ARGS__)
#define KL_WARN(mod, ...) kl_log_write(KL_LOG_WARN, mod, __VA_ARGS__)
#define KL_ERROR(mod, ...) kl_log_write(KL_LOG_ERROR, mod, __VA_ARGS__)

#endif
