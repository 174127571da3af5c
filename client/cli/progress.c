/*
 * The pull's progress on stderr: counts, bytes, time left.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define BAR_WIDTH 24

void cli_format_bytes(double bytes, char *out, size_t size)
{
    const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000 && u < 4) {
        bytes /= 1000;
        u++;
    }
    snprintf(out, size, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static void format_duration(double s, char *out, size_t size)
{
    if (s < 0)
        s = 0;
    unsigned t = (unsigned)(s + 0.5);
    if (t >= 3600)
        snprintf(out, size, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, size, "%u:%02u", t / 60, t % 60);
}

void cli_progress_init(cli_progress *p, int quiet)
{
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDERR_FILENO);
    p->quiet = quiet;
    p->last_shown = -10;
}

int cli_progress_update(void *ctx, const olievlek_progress *g)
{
    cli_progress *p = ctx;
    if (p->quiet)
        return 0;
    char bytes[32];
    cli_format_bytes((double)g->bytes, bytes, sizeof bytes);
    if (p->tty) {
        double fraction = g->entries_due ? (double)g->entries / (double)g->entries_due : 0;
        if (fraction > 1)
            fraction = 1;
        char bar[BAR_WIDTH + 1];
        int filled = (int)(fraction * BAR_WIDTH);
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[i] = i < filled ? '#' : '-';
        bar[BAR_WIDTH] = '\0';
        char left[32] = "?";
        if (fraction > 0.001)
            format_duration(g->seconds / fraction - g->seconds, left, sizeof left);
        fprintf(stderr, "\r[%s] %3.0f%%  %llu/%llu entries  %llu records  %s  %s left ", bar,
                fraction * 100, (unsigned long long)g->entries, (unsigned long long)g->entries_due,
                (unsigned long long)g->records, bytes, left);
        fflush(stderr);
        p->drawn = 1;
    } else if (g->seconds >= 2 && g->seconds - p->last_shown >= 5) {
        /* Without a terminal: a line every few seconds of a long pull, none for a short one. */
        fprintf(stderr, "pull: %llu of %llu entries, %llu records, %s, %.0f s\n",
                (unsigned long long)g->entries, (unsigned long long)g->entries_due,
                (unsigned long long)g->records, bytes, g->seconds);
        p->last_shown = g->seconds;
    }
    return 0;
}

void cli_progress_done(cli_progress *p, const olievlek_progress *g)
{
    if (p->drawn)
        fputc('\n', stderr);
    (void)g;
}
