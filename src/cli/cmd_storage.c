/* cmd_storage.c — `keelctl storage random-uuid` and `keelctl storage format`:
 * meta.properties in every log dir and the metadata dir (DESIGN.md §5 Disk). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/config.h"
#include "keel/err.h"
#include "keel/kcfg.h"
#include "keel/metaprops.h"
#include "keel/uuid.h"

#include "cli.h"

#define CLI_MAX_DIRS 64 /* log.dirs entries plus the metadata dir */
#define CLI_PATH_LEN 4096

int cli_storage_random_uuid(cli_ctx_t *ctx, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        int rc = cli_unknown_arg(ctx, argc, argv, &i, "storage", "random-uuid");
        if (rc >= 0) return rc;
    }
    uint8_t u[KL_UUID_LEN];
    char s[KL_UUID_STR_LEN + 1];
    int rc = kl_uuid_random(u);
    if (rc != 0) {
        cli_errorf("random-uuid: %s", kl_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    kl_uuid_to_string(u, s);
    puts(s);
    return CLI_EXIT_OK;
}

/* The distinct directories to format: log.dirs in order, then the metadata
 * dir unless it is one of them. Pointers into `list` (modified) and `meta`. */
static int collect_dirs(char *list, char *meta, const char **dirs, int *n)
{
    *n = 0;
    for (char *save = NULL, *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
        while (*d == ' ' || *d == '\t') d++;
        char *e = d + strlen(d);
        while (e > d && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
        if (!*d) continue;
        if (*n >= CLI_MAX_DIRS - 1) return KL_ETOOBIG;
        dirs[(*n)++] = d;
    }
    for (int i = 0; i < *n; i++)
        if (strcmp(dirs[i], meta) == 0) return 0;
    dirs[(*n)++] = meta;
    return 0;
}

/* Checks one dir before anything is written. Returns 1 if it needs
 * meta.properties, 0 if it may be skipped, -1 (message printed) if it blocks
 * the format. */
static int check_dir(const char *dir, const char *cluster_id, int32_t node_id, bool ignore_formatted)
{
    metaprops_t mp;
    char err[METAPROPS_ERR_LEN] = "";
    int rc = metaprops_read(dir, &mp, err, sizeof err);
    if (rc == KL_EUNFORMATTED) return 1;
    if (rc != 0) {
        cli_errorf("%s: %s", dir, err[0] ? err : kl_strerror(rc));
        return -1;
    }
    if (!ignore_formatted) {
        cli_errorf("%s: already formatted (cluster.id %s, node.id %d); use --ignore-formatted", dir,
                   mp.cluster_id, (int)mp.node_id);
        return -1;
    }
    if (strcmp(mp.cluster_id, cluster_id) != 0 || mp.node_id != node_id) {
        cli_errorf("%s: formatted for cluster.id %s node.id %d, not cluster.id %s node.id %d; "
                   "--ignore-formatted only skips dirs of this cluster and node",
                   dir, mp.cluster_id, (int)mp.node_id, cluster_id, (int)node_id);
        return -1;
    }
    printf("Skipping %s: already formatted with cluster.id %s\n", dir, cluster_id);
    return 0;
}

static int write_dir(const char *dir, const char *cluster_id, int32_t node_id)
{
    metaprops_t mp = {.node_id = node_id};
    snprintf(mp.cluster_id, sizeof mp.cluster_id, "%s", cluster_id);
    int rc = kl_uuid_random(mp.directory_id);
    if (rc == 0) rc = metaprops_write(dir, &mp);
    if (rc != 0) {
        cli_errorf("%s: writing %s failed: %s", dir, METAPROPS_FILE, kl_strerror(rc));
        return rc;
    }
    printf("Formatting %s with cluster.id %s\n", dir, cluster_id);
    return 0;
}

int cli_storage_format(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *config = NULL, *cluster_id = NULL;
    bool ignore_formatted = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config = argv[++i];
        else if (strcmp(argv[i], "--cluster-id") == 0 && i + 1 < argc) cluster_id = argv[++i];
        else if (strcmp(argv[i], "--ignore-formatted") == 0) ignore_formatted = true;
        else {
            int rc = cli_unknown_arg(ctx, argc, argv, &i, "storage", "format");
            if (rc >= 0) return rc;
        }
    }
    if (!config || !cluster_id) {
        cli_errorf("storage format: --config FILE and --cluster-id ID are required");
        cli_command_usage(stderr, "storage", "format");
        return CLI_EXIT_USAGE;
    }
    uint8_t u[KL_UUID_LEN];
    if (kl_uuid_parse(cluster_id, u) != 0) {
        cli_errorf("--cluster-id '%s' is not a cluster id (want %d base64url characters, as "
                   "'keelctl storage random-uuid' prints)", cluster_id, KL_UUID_STR_LEN);
        return CLI_EXIT_USAGE;
    }

    kl_config_t *cfg = NULL;
    char err[KL_CONFIG_ERR_LEN];
    if (kcfg_load(config, NULL, 0, &cfg, err, sizeof err) != 0) {
        cli_errorf("%s", err);
        return CLI_EXIT_FAIL;
    }
    int ret = CLI_EXIT_FAIL;
    int32_t node_id = (int32_t)kl_config_int(cfg, "node.id");
    char meta[CLI_PATH_LEN];
    char *list = strdup(kl_config_str(cfg, "log.dirs"));
    const char *dirs[CLI_MAX_DIRS];
    int n = 0;
    if (!list) {
        cli_errorf("out of memory");
        goto out;
    }
    if (kcfg_metadata_dir(cfg, meta, sizeof meta) != 0 || collect_dirs(list, meta, dirs, &n) != 0) {
        cli_errorf("%s: log.dirs / metadata.log.dir: too many or too long (at most %d dirs of %d bytes)",
                   config, CLI_MAX_DIRS - 1, CLI_PATH_LEN - 1);
        goto out;
    }
    /* Check every dir first so that a refusal leaves nothing half formatted. */
    bool needs_write[CLI_MAX_DIRS];
    bool ok = true;
    for (int i = 0; i < n; i++) {
        int c = check_dir(dirs[i], cluster_id, node_id, ignore_formatted);
        needs_write[i] = c == 1;
        ok &= c >= 0;
    }
    if (!ok) goto out;
    for (int i = 0; i < n; i++)
        if (needs_write[i] && write_dir(dirs[i], cluster_id, node_id) != 0) goto out;
    ret = CLI_EXIT_OK;
out:
    free(list);
    kl_config_free(cfg);
    return ret;
}
