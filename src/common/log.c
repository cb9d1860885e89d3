/* log.c — leveled logging: one line per call, emitted with a single write(2) so lines from
 * threads and processes sharing stderr never interleave. */
#include "keel/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "keel/err.h"

#define KL_LOG_ELLIPSIS "..."

static _Atomic int log_level = KL_LOG_INFO;
static _Atomic int log_node = -1;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

void kl_log_set_level(kl_log_level_t lvl)
{
    if (lvl >= KL_LOG_DEBUG && lvl <= KL_LOG_OFF) atomic_store(&log_level, (int)lvl);
}

kl_log_level_t kl_log_get_level(void)
{
    return (kl_log_level_t)atomic_load(&log_level);
}

int kl_log_parse_level(const char *s, kl_log_level_t *out)
{
    for (int i = KL_LOG_DEBUG; s && i <= KL_LOG_OFF; i++)
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (kl_log_level_t)i;
            return 0;
        }
    return KL_EINVAL;
}

void kl_log_set_node(int node_id)
{
    atomic_store(&log_node, node_id < 0 ? -1 : node_id);
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* nowhere left to report a broken stderr */
        }
        p += w;
        n -= (size_t)w;
    }
}

void kl_log_write(kl_log_level_t lvl, const char *module, const char *fmt, ...)
{
    if (lvl < KL_LOG_DEBUG || lvl >= KL_LOG_OFF || (int)lvl < atomic_load(&log_level)) return;
    int saved_errno = errno; /* callers often log and then inspect errno */

    char line[KL_LOG_LINE_MAX];
    const size_t room = sizeof line - 1; /* keep one byte for the newline */
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, room + 1, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_tags[lvl]);
    int node = atomic_load(&log_node);
    if (node >= 0) n += snprintf(line + n, room + 1 - (size_t)n, "[node %d] ", node);
    n += snprintf(line + n, room + 1 - (size_t)n, "%.64s: ", module ? module : "-");

    size_t head = (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    int m = fmt ? vsnprintf(line + head, room + 1 - head, fmt, ap) : 0;
    va_end(ap);
    if (m < 0) m = 0;
    size_t len = head + (size_t)m;
    if (len > room) {
        len = room;
        memcpy(line + len - strlen(KL_LOG_ELLIPSIS), KL_LOG_ELLIPSIS, strlen(KL_LOG_ELLIPSIS));
    }
    /* One call, one line: embedded line breaks would let a message forge log lines. */
    while (len > head && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    for (size_t i = head; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
    line[len++] = '\n';
    write_all(line, len);
    errno = saved_errno;
}
