/* output.c — keelctl's output helpers: a streaming JSON writer (always valid
 * JSON, strings escaped) and left-aligned text tables. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "keel/err.h"

#include "cli.h"

void cli_json_init(cli_json_t *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if there is none
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || n > left) return 0;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

static void put_bytes(FILE *f, const unsigned char *p, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        size_t n = utf8_len(p + i, len - i);
        if (n == 0) { /* not UTF-8: JSON text cannot carry the byte itself */
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
            else fwrite(p + i, 1, n, f);
        }
        i += n;
    }
    fputc('"', f);
}

static void put_string(FILE *f, const char *s) { put_bytes(f, (const unsigned char *)s, strlen(s)); }

/* Separator and key before a value at the current level. */
static void prefix(cli_json_t *j, const char *key)
{
    if (j->need_comma[j->depth]) fputc(',', j->f);
    j->need_comma[j->depth] = true;
    if (key) {
        put_string(j->f, key);
        fputc(':', j->f);
    }
}

static void json_open(cli_json_t *j, const char *key, char c)
{
    KL_ASSERT(j->depth + 1 < CLI_JSON_MAX_DEPTH);
    prefix(j, key);
    fputc(c, j->f);
    j->need_comma[++j->depth] = false;
}

static void json_close(cli_json_t *j, char c)
{
    KL_ASSERT(j->depth > 0);
    j->depth--;
    fputc(c, j->f);
}

void cli_json_begin_object(cli_json_t *j, const char *key) { json_open(j, key, '{'); }
void cli_json_end_object(cli_json_t *j) { json_close(j, '}'); }
void cli_json_begin_array(cli_json_t *j, const char *key) { json_open(j, key, '['); }
void cli_json_end_array(cli_json_t *j) { json_close(j, ']'); }

void cli_json_string(cli_json_t *j, const char *key, const char *v)
{
    prefix(j, key);
    put_string(j->f, v);
}

void cli_json_int(cli_json_t *j, const char *key, int64_t v)
{
    prefix(j, key);
    fprintf(j->f, "%" PRId64, v);
}

void cli_json_bytes(cli_json_t *j, const char *key, const void *data, int64_t len)
{
    prefix(j, key);
    if (!data || len < 0) fputs("null", j->f);
    else put_bytes(j->f, data, (size_t)len);
}

void cli_json_double(cli_json_t *j, const char *key, double v)
{
    prefix(j, key);
    if (isfinite(v)) fprintf(j->f, "%.3f", v);
    else fputs("null", j->f);
}

void cli_json_null(cli_json_t *j, const char *key)
{
    prefix(j, key);
    fputs("null", j->f);
}

void cli_json_bool(cli_json_t *j, const char *key, bool v)
{
    prefix(j, key);
    fputs(v ? "true" : "false", j->f);
}

void cli_json_finish(cli_json_t *j)
{
    KL_ASSERT(j->depth == 0);
    fputc('\n', j->f);
}

void cli_table_init(cli_table_t *t, int n_cols, const char *const *header)
{
    KL_ASSERT(n_cols > 0 && n_cols <= CLI_TABLE_MAX_COLS);
    t->n_cols = n_cols;
    t->n_rows = 0;
    char(*row)[CLI_TABLE_CELL_LEN] = cli_table_row(t);
    for (int c = 0; c < n_cols; c++) snprintf(row[c], CLI_TABLE_CELL_LEN, "%s", header[c]);
}

char (*cli_table_row(cli_table_t *t))[CLI_TABLE_CELL_LEN]
{
    if (t->n_rows >= CLI_TABLE_MAX_ROWS) return NULL;
    char(*row)[CLI_TABLE_CELL_LEN] = t->cells[t->n_rows++];
    memset(row, 0, sizeof t->cells[0]);
    return row;
}

void cli_table_print(const cli_table_t *t, FILE *f)
{
    size_t w[CLI_TABLE_MAX_COLS] = {0};
    for (int r = 0; r < t->n_rows; r++)
        for (int c = 0; c < t->n_cols; c++)
            if (strlen(t->cells[r][c]) > w[c]) w[c] = strlen(t->cells[r][c]);
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            if (c + 1 < t->n_cols) fprintf(f, "%-*s  ", (int)w[c], t->cells[r][c]);
            else fprintf(f, "%s\n", t->cells[r][c]);
        }
    }
}

void cli_print_escaped(FILE *f, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') fputc(p[i], f);
        else fprintf(f, "\\x%02x", p[i]);
    }
}

bool cli_stdout_ok(void)
{
    if (fflush(stdout) == 0 && !ferror(stdout)) return true;
    cli_errorf("writing output failed");
    return false;
}
