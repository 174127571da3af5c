/*
 * olievlek: the command line of the offline client. Uses only the public API (olievlek.h).
 *
 * Exit codes (also in the man page):
 *   0 done   1 failed   2 wrong usage   3 node unreachable   4 log in (again)
 *   5 verification failed   6 the record does not validate   7 conflicts or rejected edits
 *     need you   8 busy (another pull or push runs)
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "olievlek.h"

enum {
    EXIT_DONE = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_NETWORK = 3,
    EXIT_AUTH = 4,
    EXIT_VERIFY = 5,
    EXIT_INVALID = 6,
    EXIT_ATTENTION = 7,
    EXIT_BUSY = 8
};

typedef struct {
    const char *dir;
    int json;
    int quiet;
    int argc;
    char **argv;
} cli;

typedef struct {
    const char *name;
    int (*run)(cli *c);
    const char *usage;
    const char *help;
} command;

static const command *find_command(const char *name);

/* ---- Helpers ------------------------------------------------------------------------------ */

static int exit_code(int status)
{
    switch (status) {
    case OLIEVLEK_OK:
        return EXIT_DONE;
    case OLIEVLEK_ENETWORK:
        return EXIT_NETWORK;
    case OLIEVLEK_EAUTH:
    case OLIEVLEK_EDENIED:
        return EXIT_AUTH;
    case OLIEVLEK_EVERIFY:
        return EXIT_VERIFY;
    case OLIEVLEK_ESCHEMA:
        return EXIT_INVALID;
    case OLIEVLEK_ECONFLICT:
        return EXIT_ATTENTION;
    case OLIEVLEK_EBUSY:
        return EXIT_BUSY;
    case OLIEVLEK_EINVAL:
        return EXIT_USAGE;
    default:
        return EXIT_FAILED;
    }
}

static int fail(cli *c, olievlek_replica *r, int status)
{
    const char *message = olievlek_last_error(r);
    if (!message || !*message)
        message = olievlek_strerror(status);
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s, s:i}", "error", olievlek_strerror(status), "message",
                              message, "exit", exit_code(status));
        if (status == OLIEVLEK_ESCHEMA && r) {
            json_t *errs = json_array();
            for (unsigned i = 0; i < olievlek_validation_count(r); i++)
                json_array_append_new(errs, json_pack("{s:s, s:s, s:s}", "field",
                                                      olievlek_validation_field(r, i), "nl",
                                                      olievlek_validation_message(r, i, "nl"), "en",
                                                      olievlek_validation_message(r, i, "en")));
            json_object_set_new(o, "errors", errs);
        }
        json_dumpf(o, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(o);
    } else {
        fprintf(stderr, "olievlek: %s\n", message);
        if (status == OLIEVLEK_ESCHEMA && r)
            for (unsigned i = 0; i < olievlek_validation_count(r); i++)
                fprintf(stderr, "  %s: %s\n",
                        *olievlek_validation_field(r, i) ? olievlek_validation_field(r, i)
                                                         : "(record)",
                        olievlek_validation_message(r, i, "nl"));
    }
    olievlek_close(r);
    return exit_code(status);
}

static void print_json(json_t *o)
{
    json_dumpf(o, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(o);
}

static int open_replica(cli *c, olievlek_replica **r)
{
    int rc = olievlek_open(c->dir, r);
    return rc;
}

/* Takes "--name VALUE" or "--name=VALUE" at argv[*i]; returns the value or NULL. */
static const char *option_value(cli *c, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = c->argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] == '\0' && *i + 1 < c->argc)
        return c->argv[++*i];
    return NULL;
}

static int usage_error(cli *c, const char *message)
{
    const command *cmd = find_command(c->argv[0]);
    fprintf(stderr, "olievlek: %s\nusage: olievlek %s\n", message, cmd ? cmd->usage : "help");
    return EXIT_USAGE;
}

static void format_time(int64_t ms, char *out, size_t size)
{
    if (!ms) {
        snprintf(out, size, "never");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M", &tm);
}

/* ---- clone, pull, push, sync -------------------------------------------------------------- */

static int report_pull(cli *c, olievlek_replica *r, int rc, const olievlek_progress *g)
{
    if (rc != OLIEVLEK_OK)
        return fail(c, r, rc);
    char bytes[32];
    cli_format_bytes((double)g->bytes, bytes, sizeof bytes);
    if (c->json) {
        print_json(json_pack("{s:I, s:I, s:I, s:f}", "records", (json_int_t)g->records, "entries",
                             (json_int_t)g->entries, "bytes", (json_int_t)g->bytes, "seconds",
                             g->seconds));
    } else if (!c->quiet) {
        if (g->entries == 0)
            printf("Up to date.\n");
        else
            printf("Pulled %llu records (%llu verified log entries, %s) in %.1f s.\n",
                   (unsigned long long)g->records, (unsigned long long)g->entries, bytes,
                   g->seconds);
    }
    olievlek_close(r);
    return EXIT_DONE;
}

static int do_pull(cli *c, olievlek_replica *r)
{
    cli_progress p;
    cli_progress_init(&p, c->quiet || c->json);
    olievlek_progress g;
    int rc = olievlek_pull(r, cli_progress_update, &p, &g);
    cli_progress_done(&p, &g);
    return report_pull(c, r, rc, &g);
}

static int cmd_clone(cli *c)
{
    olievlek_clone_options o = {0};
    for (int i = 1; i < c->argc; i++) {
        const char *v;
        if (strcmp(c->argv[i], "--region") == 0)
            o.region_only = 1;
        else if (strcmp(c->argv[i], "--national") == 0)
            o.region_only = 0;
        else if ((v = option_value(c, &i, "--kinds")))
            o.kinds = v;
        else if ((v = option_value(c, &i, "--node-id")))
            o.node_id = v;
        else if (c->argv[i][0] == '-')
            return usage_error(c, "unknown option");
        else if (!o.node_url)
            o.node_url = c->argv[i];
        else
            return usage_error(c, "one node address only");
    }
    if (!o.node_url)
        return usage_error(c, "give the node's address, e.g. http://127.0.0.1:8080");
    olievlek_replica *r;
    int rc = olievlek_create(c->dir, &o, &r);
    if (rc)
        return fail(c, NULL, rc);
    if (!c->quiet && !c->json) {
        olievlek_info info;
        olievlek_status_info(r, &info);
        printf("Replica of %s in %s (node %s).\n", info.node_url, c->dir, info.node_id);
    }
    return do_pull(c, r);
}

static int cmd_pull(cli *c)
{
    if (c->argc > 1)
        return usage_error(c, "pull takes no arguments");
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    return rc ? fail(c, NULL, rc) : do_pull(c, r);
}

static int push_report(cli *c, olievlek_replica *r, int rc, const olievlek_push_result *p,
                       int close_after)
{
    if (rc != OLIEVLEK_OK && rc != OLIEVLEK_ENETWORK)
        return fail(c, r, rc);
    if (c->json && close_after) {
        print_json(json_pack("{s:i, s:i, s:i, s:i}", "accepted", p->accepted, "conflicts",
                             p->conflicts, "rejected", p->rejected, "pending", p->pending));
    } else if (!c->quiet && !c->json) {
        if (!p->accepted && !p->conflicts && !p->rejected && !p->pending)
            printf("Nothing to push.\n");
        else
            printf("Pushed: %u accepted, %u in conflict, %u rejected, %u still waiting.\n",
                   p->accepted, p->conflicts, p->rejected, p->pending);
        if (p->conflicts)
            printf("See the conflicts with `olievlek conflicts` and settle each with `olievlek "
                   "resolve`.\n");
        if (p->rejected)
            printf("See why with `olievlek status`; fix with `olievlek edit ID`.\n");
    }
    if (rc == OLIEVLEK_ENETWORK)
        return fail(c, r, rc);
    if (close_after)
        olievlek_close(r);
    return p->conflicts || p->rejected ? EXIT_ATTENTION : EXIT_DONE;
}

static int cmd_push(cli *c)
{
    if (c->argc > 1)
        return usage_error(c, "push takes no arguments");
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    olievlek_push_result p;
    rc = olievlek_push(r, &p);
    return push_report(c, r, rc, &p, 1);
}

static int cmd_sync(cli *c)
{
    if (c->argc > 1)
        return usage_error(c, "sync takes no arguments");
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    /* Push first, so the pull brings back the node's versions of what was just accepted. */
    olievlek_push_result p;
    rc = olievlek_push(r, &p);
    int json = c->json;
    c->json = 0;
    int quiet = c->quiet;
    c->quiet = quiet || json;
    int code = push_report(c, r, rc, &p, 0);
    if (code != EXIT_DONE && code != EXIT_ATTENTION)
        return code;
    cli_progress prog;
    cli_progress_init(&prog, c->quiet);
    olievlek_progress g;
    rc = olievlek_pull(r, cli_progress_update, &prog, &g);
    cli_progress_done(&prog, &g);
    c->json = json;
    c->quiet = quiet;
    if (rc)
        return fail(c, r, rc);
    if (json)
        print_json(json_pack("{s:{s:i, s:i, s:i, s:i}, s:{s:I, s:I, s:I}}", "push", "accepted",
                             p.accepted, "conflicts", p.conflicts, "rejected", p.rejected,
                             "pending", p.pending, "pull", "records", (json_int_t)g.records,
                             "entries", (json_int_t)g.entries, "bytes", (json_int_t)g.bytes));
    else if (!quiet)
        printf(g.entries ? "Pulled %llu records.\n" : "Up to date.\n",
               (unsigned long long)g.records);
    olievlek_close(r);
    return code;
}

/* ---- login, logout, status, log ----------------------------------------------------------- */

static char *read_password(void)
{
    const char *env = getenv("OLIEVLEK_PASSWORD");
    if (env)
        return strdup(env);
    char buf[512];
    int tty = isatty(STDIN_FILENO);
    struct termios saved, quiet;
    if (tty) {
        fprintf(stderr, "Wachtwoord: ");
        tcgetattr(STDIN_FILENO, &saved);
        quiet = saved;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = fgets(buf, sizeof buf, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (!line)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    char *p = strdup(buf);
    memset(buf, 0, sizeof buf);
    return p;
}

static int cmd_login(cli *c)
{
    if (c->argc != 2)
        return usage_error(c, "give your user name");
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    char *password = read_password();
    if (!password) {
        olievlek_close(r);
        fprintf(stderr, "olievlek: no password given\n");
        return EXIT_USAGE;
    }
    rc = olievlek_login(r, c->argv[1], password);
    memset(password, 0, strlen(password));
    free(password);
    if (rc)
        return fail(c, r, rc);
    if (c->json)
        print_json(json_pack("{s:s}", "username", c->argv[1]));
    else if (!c->quiet)
        printf("Logged in as %s.\n", c->argv[1]);
    olievlek_close(r);
    return EXIT_DONE;
}

static int cmd_logout(cli *c)
{
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    if ((rc = olievlek_logout(r)) != OLIEVLEK_OK)
        return fail(c, r, rc);
    if (!c->quiet && !c->json)
        printf("Logged out.\n");
    olievlek_close(r);
    return EXIT_DONE;
}

typedef struct {
    json_t *list;
    int shown;
} collect_ctx;

static int print_edit(void *ctx, const olievlek_edit_info *e)
{
    collect_ctx *k = ctx;
    if (k->list) {
        json_array_append_new(k->list,
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?}", "mutation",
                                        e->mutation_id, "op", e->op, "kind", e->kind, "id", e->id,
                                        "title", e->title, "state", e->state, "reason", e->reason));
    } else {
        printf("  %-8s %-7s %-7s %s %s\n", e->state, e->op, e->kind, e->id, e->title);
        if (e->reason)
            printf("           %s\n           (fix with `olievlek edit %s`, or drop with "
                   "`olievlek discard %s`)\n",
                   e->reason, e->id, e->mutation_id);
    }
    k->shown++;
    return 0;
}

static int cmd_status(cli *c)
{
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    olievlek_info info;
    if ((rc = olievlek_status_info(r, &info)) != OLIEVLEK_OK)
        return fail(c, r, rc);
    char pulled[32], pushed[32];
    format_time(info.last_pull_ms, pulled, sizeof pulled);
    format_time(info.last_push_ms, pushed, sizeof pushed);
    if (c->json) {
        collect_ctx k = {json_array(), 0};
        olievlek_edits(r, print_edit, &k);
        print_json(json_pack("{s:s, s:s, s:s?, s:s, s:s, s:I, s:i, s:i, s:i, s:i, s:I, s:I, s:o}",
                             "node_url", info.node_url, "node_id", info.node_id, "username",
                             info.username, "scope", info.region_only ? "region" : "national",
                             "kinds", info.kinds, "records", (json_int_t)info.records, "pending",
                             info.pending, "conflicts", info.conflicts, "rejected", info.rejected,
                             "origins", info.origins, "last_pull_ms", (json_int_t)info.last_pull_ms,
                             "last_push_ms", (json_int_t)info.last_push_ms, "edits", k.list));
    } else {
        printf("Node        %s (%s)\n", info.node_url, info.node_id);
        printf("Account     %s\n", info.username ? info.username : "not logged in");
        printf("Scope       %s, %s\n", info.region_only ? "this region" : "the whole network",
               info.kinds[0] ? info.kinds : "every kind");
        printf("Records     %llu from %u origin%s\n", (unsigned long long)info.records,
               info.origins, info.origins == 1 ? "" : "s");
        printf("Last pull   %s\nLast push   %s\n", pulled, pushed);
        printf("Waiting     %u edit%s to push, %u rejected, %u conflict%s\n", info.pending,
               info.pending == 1 ? "" : "s", info.rejected, info.conflicts,
               info.conflicts == 1 ? "" : "s");
        collect_ctx k = {NULL, 0};
        olievlek_edits(r, print_edit, &k);
    }
    olievlek_close(r);
    return info.conflicts || info.rejected ? EXIT_ATTENTION : EXIT_DONE;
}

static int print_event(void *ctx, const olievlek_event *e)
{
    json_t *list = ctx;
    if (list) {
        json_array_append_new(
            list, json_pack("{s:I, s:s}", "time_ms", (json_int_t)e->time_ms, "what", e->what));
    } else {
        char when[32];
        format_time(e->time_ms, when, sizeof when);
        printf("%s  %s\n", when, e->what);
    }
    return 0;
}

static int cmd_log(cli *c)
{
    unsigned limit = 50;
    for (int i = 1; i < c->argc; i++) {
        const char *v;
        if ((v = option_value(c, &i, "--limit")))
            limit = (unsigned)strtoul(v, NULL, 10);
        else
            return usage_error(c, "unknown argument");
    }
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    json_t *list = c->json ? json_array() : NULL;
    rc = olievlek_history(r, limit ? limit : 50, print_event, list);
    if (rc)
        return fail(c, r, rc);
    if (list)
        print_json(list);
    olievlek_close(r);
    return EXIT_DONE;
}

/* ---- ls, show, search --------------------------------------------------------------------- */

static int print_record_line(void *ctx, const olievlek_record *rec)
{
    collect_ctx *k = ctx;
    if (k->list) {
        json_t *o = json_loads(rec->json, 0, NULL);
        json_array_append_new(k->list, o ? o : json_null());
    } else {
        printf("%s  %-7s %-9s %s%s%s\n", rec->id, rec->kind, rec->status, rec->title,
               rec->local ? "  [local edit]" : "", rec->conflict ? "  [conflict]" : "");
    }
    k->shown++;
    return 0;
}

static int cmd_ls(cli *c)
{
    const char *kind = NULL;
    int all = 0;
    for (int i = 1; i < c->argc; i++) {
        if (strcmp(c->argv[i], "--all") == 0)
            all = 1;
        else if (c->argv[i][0] != '-' && !kind)
            kind = c->argv[i];
        else
            return usage_error(c, "unknown argument");
    }
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    collect_ctx k = {c->json ? json_array() : NULL, 0};
    rc = olievlek_list(r, kind, all, print_record_line, &k);
    if (rc) {
        json_decref(k.list);
        return fail(c, r, rc);
    }
    if (k.list)
        print_json(k.list);
    olievlek_close(r);
    return EXIT_DONE;
}

static int print_record_full(void *ctx, const olievlek_record *rec)
{
    cli *c = ctx;
    json_t *o = json_loads(rec->json, 0, NULL);
    if (c->json) {
        print_json(o);
        return 0;
    }
    printf("%s  (%s, %s, version %u%s%s)\n", rec->title, rec->kind, rec->status, rec->version,
           rec->local ? ", local edit not yet pushed" : "", rec->conflict ? ", in conflict" : "");
    printf("id %s · origin %s · updated %s\n\n", rec->id, rec->origin, rec->updated);
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    putchar('\n');
    json_decref(o);
    return 0;
}

static int cmd_show(cli *c)
{
    if (c->argc != 2)
        return usage_error(c, "give a record id");
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    rc = olievlek_get(r, c->argv[1], print_record_full, c);
    if (rc)
        return fail(c, r, rc);
    olievlek_close(r);
    return EXIT_DONE;
}

static int print_hit(void *ctx, const olievlek_hit *hit)
{
    collect_ctx *k = ctx;
    if (k->list) {
        json_array_append_new(k->list,
                              json_pack("{s:s, s:s, s:s, s:f, s:s}", "id", hit->record->id, "kind",
                                        hit->record->kind, "title", hit->record->title, "score",
                                        hit->score, "snippet", hit->snippet));
    } else {
        printf("%s  %-7s %s\n        %s\n", hit->record->id, hit->record->kind, hit->record->title,
               hit->snippet);
    }
    k->shown++;
    return 0;
}

static int cmd_search(cli *c)
{
    const char *kind = NULL;
    unsigned limit = 20;
    char query[1024] = "";
    for (int i = 1; i < c->argc; i++) {
        const char *v;
        if ((v = option_value(c, &i, "--kind")))
            kind = v;
        else if ((v = option_value(c, &i, "--limit")))
            limit = (unsigned)strtoul(v, NULL, 10);
        else if (strlen(query) + strlen(c->argv[i]) + 2 < sizeof query) {
            if (query[0])
                strcat(query, " ");
            strcat(query, c->argv[i]);
        } else
            return usage_error(c, "the search is too long");
    }
    if (!query[0])
        return usage_error(c, "give words to search for");
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    collect_ctx k = {c->json ? json_array() : NULL, 0};
    rc = olievlek_search(r, query, kind, limit, print_hit, &k);
    if (rc) {
        json_decref(k.list);
        return fail(c, r, rc);
    }
    if (k.list)
        print_json(k.list);
    else if (!k.shown && !c->quiet)
        printf("Nothing found for \"%s\".\n", query);
    olievlek_close(r);
    return EXIT_DONE;
}

/* ---- new, edit, rm ------------------------------------------------------------------------ */

/* The comment block above a template: the fields, which are required, the choices. */
static void template_header(const char *kind, char *out, size_t size)
{
    snprintf(out, size,
             "# Nieuw: %s. Vul de velden in en sla op; regels met # worden overgeslagen.\n"
             "# New %s: fill in the fields and save; lines starting with # are skipped.\n"
             "# Leave the file empty to cancel. The record is checked before it is queued.\n",
             kind, kind);
}

static int edit_loop(cli *c, olievlek_replica *r, const char *kind, const char *id, char *text,
                     const char *file)
{
    /* From a file: one attempt. In the editor: again until it validates or the user gives up. */
    for (int attempt = 0; attempt < 20; attempt++) {
        char *new_id = NULL;
        int rc = id ? olievlek_edit(r, id, text) : olievlek_new(r, kind, text, &new_id);
        if (rc == OLIEVLEK_OK) {
            if (c->json)
                print_json(json_pack("{s:s, s:s}", "id", id ? id : new_id, "state", "queued"));
            else if (!c->quiet)
                printf("%s %s queued; it goes to the node with `olievlek push` or `olievlek "
                       "sync`.\n",
                       id ? "Change of" : "New record", id ? id : new_id);
            free(new_id);
            free(text);
            olievlek_close(r);
            return EXIT_DONE;
        }
        if (rc != OLIEVLEK_ESCHEMA || file || !isatty(STDIN_FILENO)) {
            free(text);
            return fail(c, r, rc);
        }
        /* Back into the editor with the problems on top. */
        char problems[8192];
        size_t used =
            (size_t)snprintf(problems, sizeof problems, "# Dit klopt nog niet / not right yet:\n");
        for (unsigned i = 0; i < olievlek_validation_count(r) && used < sizeof problems; i++)
            used += (size_t)snprintf(problems + used, sizeof problems - used, "#   %s: %s\n",
                                     olievlek_validation_field(r, i),
                                     olievlek_validation_message(r, i, "nl"));
        char *again = cli_edit_below(problems, text);
        free(text);
        text = again;
        if (!text) {
            olievlek_close(r);
            return EXIT_FAILED;
        }
    }
    free(text);
    olievlek_close(r);
    return EXIT_FAILED;
}

/* The arguments of new and edit: one operand (kind or id) and an optional --file. -1 for
 * anything else. */
static int operand_and_file(cli *c, const char **operand, const char **file)
{
    for (int i = 1; i < c->argc; i++) {
        const char *v;
        if ((v = option_value(c, &i, "--file")))
            *file = v;
        else if (c->argv[i][0] != '-' && !*operand)
            *operand = c->argv[i];
        else
            return -1;
    }
    return 0;
}

static int cmd_new(cli *c)
{
    const char *kind = NULL, *file = NULL;
    if (operand_and_file(c, &kind, &file) != 0)
        return usage_error(c, "unknown argument");
    if (!kind)
        return usage_error(c, "give the kind: case, lesson, visit, request, person, school");
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    char *text = NULL;
    if (file) {
        text = cli_read_file(file);
    } else {
        char *tmpl;
        if ((rc = olievlek_template(r, kind, &tmpl)) != OLIEVLEK_OK)
            return fail(c, r, rc);
        char header[512];
        template_header(kind, header, sizeof header);
        text = cli_edit_below(header, tmpl);
        olievlek_free(tmpl);
    }
    if (!text) {
        olievlek_close(r);
        return EXIT_FAILED;
    }
    return edit_loop(c, r, kind, NULL, text, file);
}

static int copy_json(void *ctx, const olievlek_record *rec)
{
    char **out = ctx;
    json_t *o = json_loads(rec->json, 0, NULL);
    *out = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return 0;
}

static int cmd_edit(cli *c)
{
    const char *id = NULL, *file = NULL;
    if (operand_and_file(c, &id, &file) != 0)
        return usage_error(c, "unknown argument");
    if (!id)
        return usage_error(c, "give the record id");
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    char *text = NULL;
    if (file) {
        text = cli_read_file(file);
    } else {
        char *current = NULL;
        if ((rc = olievlek_get(r, id, copy_json, &current)) != OLIEVLEK_OK)
            return fail(c, r, rc);
        const char *header = "# Wijzig de velden en sla op; regels met # worden overgeslagen.\n"
                             "# Change the fields and save; lines starting with # are skipped.\n"
                             "# version, created, updated, origin and author are set by the "
                             "node.\n";
        text = cli_edit_below(header, current ? current : "{}");
        free(current);
    }
    if (!text) {
        olievlek_close(r);
        return EXIT_FAILED;
    }
    return edit_loop(c, r, NULL, id, text, file);
}

static int cmd_rm(cli *c)
{
    if (c->argc != 2)
        return usage_error(c, "give the record id");
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    if ((rc = olievlek_delete(r, c->argv[1])) != OLIEVLEK_OK)
        return fail(c, r, rc);
    if (c->json)
        print_json(json_pack("{s:s, s:s}", "id", c->argv[1], "state", "queued"));
    else if (!c->quiet)
        printf("Deletion of %s queued.\n", c->argv[1]);
    olievlek_close(r);
    return EXIT_DONE;
}

/* ---- conflicts, resolve, discard ---------------------------------------------------------- */

/* Prints the members of two versions side by side where they differ. */
static void print_side_by_side(const char *mine, const char *theirs)
{
    json_t *a = mine ? json_loads(mine, 0, NULL) : json_object();
    json_t *b = theirs ? json_loads(theirs, 0, NULL) : json_object();
    static const char *const envelope[] = {"version", "updated", "created", "author", NULL};
    json_t *keys = json_object();
    const char *key;
    json_t *value;
    json_object_foreach(a, key, value) json_object_set(keys, key, json_true());
    json_object_foreach(b, key, value) json_object_set(keys, key, json_true());
    printf("    %-16s %-36s %s\n", "field", "mine (local)", "theirs (node)");
    json_object_foreach(keys, key, value)
    {
        int skip = 0;
        for (const char *const *e = envelope; *e; e++)
            skip |= strcmp(key, *e) == 0;
        json_t *x = json_object_get(a, key), *y = json_object_get(b, key);
        if (skip || json_equal(x, y))
            continue;
        char *xs = x ? json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("—");
        char *ys = y ? json_dumps(y, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("—");
        printf("  ≠ %-16s %-36.36s %.60s\n", key, xs ? xs : "", ys ? ys : "");
        free(xs);
        free(ys);
    }
    json_decref(keys);
    json_decref(a);
    json_decref(b);
}

static int print_conflict(void *ctx, const olievlek_conflict *k)
{
    collect_ctx *c = ctx;
    if (c->list) {
        json_t *mine = k->mine ? json_loads(k->mine, 0, NULL) : json_null();
        json_t *theirs = k->theirs ? json_loads(k->theirs, 0, NULL) : json_null();
        json_array_append_new(
            c->list, json_pack("{s:s, s:s, s:s, s:i, s:i, s:o, s:o}", "id", k->id, "kind",
                               k->kind ? k->kind : "", "title", k->title, "base_version",
                               k->base_version, "their_version", k->their_version, "mine",
                               mine ? mine : json_null(), "theirs", theirs ? theirs : json_null()));
    } else {
        printf("%s  %s \"%s\"\n", k->id, k->kind ? k->kind : "", k->title);
        if (k->their_version)
            printf("  you edited version %u; the node is at version %u now\n", k->base_version,
                   k->their_version);
        else
            printf("  you edited version %u; the record was deleted on the node\n",
                   k->base_version);
        print_side_by_side(k->mine, k->theirs);
        printf("  settle: olievlek resolve %s --mine | --theirs | --edit\n\n", k->id);
    }
    c->shown++;
    return 0;
}

static int cmd_conflicts(cli *c)
{
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    collect_ctx k = {c->json ? json_array() : NULL, 0};
    if ((rc = olievlek_conflicts(r, print_conflict, &k)) != OLIEVLEK_OK) {
        json_decref(k.list);
        return fail(c, r, rc);
    }
    if (k.list)
        print_json(k.list);
    else if (!k.shown && !c->quiet)
        printf("No conflicts.\n");
    olievlek_close(r);
    return k.shown ? EXIT_ATTENTION : EXIT_DONE;
}

typedef struct {
    const char *id;
    char *mine, *theirs;
} conflict_copy;

static int find_conflict(void *ctx, const olievlek_conflict *k)
{
    conflict_copy *cc = ctx;
    if (strcmp(k->id, cc->id) != 0)
        return 0;
    cc->mine = k->mine ? strdup(k->mine) : NULL;
    cc->theirs = k->theirs ? strdup(k->theirs) : NULL;
    return 1;
}

/* title, then every line of text as a comment ("#   line"): sized exactly, malloc'd. */
static char *commented(const char *title, const char *text)
{
    size_t len = strlen(title) + 1;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        len += n + 5; /* "#   " and the newline */
        p += n + (p[n] == '\n');
    }
    char *out = malloc(len);
    if (!out)
        return NULL;
    size_t used = (size_t)snprintf(out, len, "%s", title);
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        used += (size_t)snprintf(out + used, len - used, "#   %.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
    return out;
}

static int cmd_resolve(cli *c)
{
    const char *id = NULL, *file = NULL;
    int how = -1, edit = 0;
    for (int i = 1; i < c->argc; i++) {
        const char *v;
        if (strcmp(c->argv[i], "--mine") == 0)
            how = OLIEVLEK_KEEP_MINE;
        else if (strcmp(c->argv[i], "--theirs") == 0)
            how = OLIEVLEK_KEEP_THEIRS;
        else if (strcmp(c->argv[i], "--edit") == 0)
            how = OLIEVLEK_MERGED, edit = 1;
        else if ((v = option_value(c, &i, "--file")))
            how = OLIEVLEK_MERGED, file = v;
        else if (c->argv[i][0] != '-' && !id)
            id = c->argv[i];
        else
            return usage_error(c, "unknown argument");
    }
    if (!id || how < 0)
        return usage_error(c, "give the record id and --mine, --theirs, --edit or --file F");
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    char *merged = NULL;
    if (file) {
        if (!(merged = cli_read_file(file))) {
            olievlek_close(r);
            return EXIT_FAILED;
        }
    } else if (edit) {
        conflict_copy cc = {id, NULL, NULL};
        olievlek_conflicts(r, find_conflict, &cc);
        if (!cc.theirs) {
            free(cc.mine);
            olievlek_close(r);
            fprintf(stderr, "olievlek: %s has no conflict to resolve\n", id);
            return EXIT_FAILED;
        }
        /* Start from mine, with theirs as comments for reference. */
        json_t *t = json_loads(cc.theirs, 0, NULL);
        char *theirs_text = t ? json_dumps(t, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        json_decref(t);
        json_t *m = cc.mine ? json_loads(cc.mine, 0, NULL) : NULL;
        char *mine_text = m ? json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS) : strdup("{}");
        json_decref(m);
        char *header = commented("# Voeg samen en sla op / merge and save.\n"
                                 "# The node's version now (for reference):\n",
                                 theirs_text ? theirs_text : "");
        merged = header && mine_text ? cli_edit_below(header, mine_text) : NULL;
        free(header);
        free(theirs_text);
        free(mine_text);
        free(cc.mine);
        free(cc.theirs);
        if (!merged) {
            olievlek_close(r);
            return EXIT_FAILED;
        }
    }
    rc = olievlek_resolve(r, id, (olievlek_resolution)how, merged);
    free(merged);
    if (rc)
        return fail(c, r, rc);
    if (c->json)
        print_json(json_pack("{s:s, s:s}", "id", id, "state", "resolved"));
    else if (!c->quiet)
        printf(how == OLIEVLEK_KEEP_THEIRS
                   ? "Resolved: the node's version of %s is kept.\n"
                   : "Resolved: your version of %s is queued on top of the node's; push it.\n",
               id);
    olievlek_close(r);
    return EXIT_DONE;
}

static int cmd_discard(cli *c)
{
    if (c->argc != 2)
        return usage_error(c, "give the mutation id of a rejected edit (see `olievlek status`)");
    olievlek_replica *r;
    int rc = open_replica(c, &r);
    if (rc)
        return fail(c, NULL, rc);
    if ((rc = olievlek_discard(r, c->argv[1])) != OLIEVLEK_OK)
        return fail(c, r, rc);
    if (!c->quiet && !c->json)
        printf("Discarded.\n");
    olievlek_close(r);
    return EXIT_DONE;
}

/* ---- help and main ------------------------------------------------------------------------ */

static int cmd_help(cli *c);

static const command commands[] = {
    {"clone", cmd_clone, "clone URL [--region | --national] [--kinds KIND,…] [--node-id ID]",
     "Create a replica of the node at URL in the replica directory and pull it. --region keeps "
     "only the node's own records, --national (the default) every node's; --kinds keeps only "
     "those kinds; --node-id pins the node's id (its key fingerprint) instead of trusting the "
     "first answer."},
    {"login", cmd_login, "login USERNAME",
     "Sign in at the node. The password is read from the terminal without echo, or from the "
     "environment variable OLIEVLEK_PASSWORD; the token is kept in a file only you can read."},
    {"logout", cmd_logout, "logout", "End the session and remove the token."},
    {"pull", cmd_pull, "pull",
     "Fetch and verify what the node has beyond the replica. Resumes where an interrupted pull "
     "stopped."},
    {"push", cmd_push, "push",
     "Send the queued edits, in order; a retry never applies an edit twice."},
    {"sync", cmd_sync, "sync", "push, then pull."},
    {"status", cmd_status, "status",
     "The node, account, scope, counts, last sync, and every edit waiting or rejected."},
    {"ls", cmd_ls, "ls [KIND] [--all]",
     "List records, newest first (deleted ones too with --all)."},
    {"show", cmd_show, "show ID", "Show one record (with your local edit, if any)."},
    {"search", cmd_search, "search WORDS… [--kind KIND] [--limit N]",
     "Search the replica offline, with the same Dutch word analysis as the node: word forms, "
     "diacritics, \"phrases\", the last word as a prefix."},
    {"new", cmd_new, "new KIND [--file FILE]",
     "Write a new lesson, case, visit, request, … in $EDITOR from a template (or from FILE, - "
     "for standard input). It is checked, then queued for push."},
    {"edit", cmd_edit, "edit ID [--file FILE]", "Change a record in $EDITOR (or from FILE)."},
    {"rm", cmd_rm, "rm ID", "Queue the deletion of a record."},
    {"conflicts", cmd_conflicts, "conflicts",
     "Records changed on the node while you edited them: both versions, field by field."},
    {"resolve", cmd_resolve, "resolve ID --mine | --theirs | --edit | --file FILE",
     "Settle a conflict: keep your version (on top of the node's), the node's, or a merge you "
     "write in $EDITOR or FILE."},
    {"discard", cmd_discard, "discard MUTATION", "Drop a rejected edit."},
    {"log", cmd_log, "log [--limit N]", "What happened in this replica, newest first."},
    {"help", cmd_help, "help [COMMAND]", "This help, or a command's."},
};

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (name && strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void general_help(FILE *out)
{
    fprintf(out, "olievlek: work offline with an Olievlek node's records, then sync.\n\n"
                 "usage: olievlek [-C DIR] [--json] [--quiet] COMMAND [ARGS]\n\n"
                 "  -C DIR     the replica directory (default $OLIEVLEK_DIR, else\n"
                 "             $XDG_DATA_HOME/olievlek or ~/.local/share/olievlek)\n"
                 "  --json     machine-readable output on standard output\n"
                 "  --quiet    no progress and no messages, only errors\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %s\n", commands[i].usage);
    fprintf(out, "\n`olievlek help COMMAND` or `olievlek COMMAND --help` explains one; `man "
                 "olievlek` has it all.\n"
                 "Exit codes: 0 done, 1 failed, 2 usage, 3 node unreachable, 4 log in, 5 "
                 "verification failed,\n"
                 "6 record invalid, 7 conflicts or rejected edits need you, 8 busy.\n");
}

static int command_help(const command *cmd)
{
    printf("usage: olievlek %s\n\n%s\n", cmd->usage, cmd->help);
    return EXIT_DONE;
}

static int cmd_help(cli *c)
{
    if (c->argc > 1) {
        const command *cmd = find_command(c->argv[1]);
        if (!cmd) {
            fprintf(stderr, "olievlek: no command '%s'\n", c->argv[1]);
            return EXIT_USAGE;
        }
        return command_help(cmd);
    }
    general_help(stdout);
    return EXIT_DONE;
}

static char *default_dir(void)
{
    const char *env = getenv("OLIEVLEK_DIR");
    if (env && *env)
        return strdup(env);
    char path[4096];
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(path, sizeof path, "%s/olievlek", xdg);
    else
        snprintf(path, sizeof path, "%s/.local/share/olievlek", home ? home : ".");
    return strdup(path);
}

int main(int argc, char **argv)
{
    cli c = {0};
    char *dir = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-C") == 0 && i + 1 < argc)
            c.dir = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            c.json = 1;
        else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0)
            c.quiet = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            general_help(stdout);
            return EXIT_DONE;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("olievlek 0.1.0\n");
            return EXIT_DONE;
        } else {
            fprintf(stderr, "olievlek: unknown option %s\n", argv[i]);
            general_help(stderr);
            return EXIT_USAGE;
        }
    }
    if (i == argc) {
        general_help(stderr);
        return EXIT_USAGE;
    }
    const command *cmd = find_command(argv[i]);
    if (!cmd) {
        fprintf(stderr, "olievlek: no command '%s' (see `olievlek help`)\n", argv[i]);
        return EXIT_USAGE;
    }
    for (int j = i + 1; j < argc; j++)
        if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0)
            return command_help(cmd);
    if (!c.dir)
        c.dir = dir = default_dir();
    /* Mixing human and JSON output would break scripts: --json answers only in JSON. */
    if (c.json)
        c.quiet = 1;
    c.argc = argc - i;
    c.argv = argv + i;
    int code = cmd->run(&c);
    free(dir);
    return code;
}
