/* output.c — keelctl's output helpers: a streaming JSON writer (always valid
 * JSON, strings escaped) and left-aligned text tables. */
#include <inttypes.h>
#include <string.h>

#include "keel/err.h"

#include "cli.h"

void cli_json_init(cli_json_t *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
}

static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

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
