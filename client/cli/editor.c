/*
 * Writing records in the user's editor, and reading them from files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define TEXT_MAX (4u << 20)

void cli_strip_comments(char *text)
{
    char *out = text;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line + 1) : strlen(line);
        const char *p = line;
        while (p < line + len && (*p == ' ' || *p == '\t'))
            p++;
        if (*p != '#') {
            memmove(out, line, len);
            out += len;
        }
        line += len;
    }
    *out = '\0';
}

static char *read_stream(FILE *f)
{
    size_t cap = 8192, len = 0;
    char *text = malloc(cap);
    if (!text)
        return NULL;
    size_t n;
    while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            if (cap >= TEXT_MAX) {
                fprintf(stderr, "olievlek: the text is larger than %u bytes\n", TEXT_MAX);
                free(text);
                return NULL;
            }
            char *grown = realloc(text, cap * 2);
            if (!grown) {
                free(text);
                return NULL;
            }
            text = grown;
            cap *= 2;
        }
    }
    text[len] = '\0';
    return text;
}

char *cli_read_file(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    if (!f) {
        fprintf(stderr, "olievlek: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *text = read_stream(f);
    if (f != stdin)
        fclose(f);
    if (text)
        cli_strip_comments(text);
    return text;
}

char *cli_edit_below(const char *header, const char *body)
{
    size_t len = strlen(header) + strlen(body) + 2;
    char *initial = malloc(len);
    if (!initial)
        return NULL;
    snprintf(initial, len, "%s%s\n", header, body);
    char *text = cli_edit_text(initial, ".json");
    free(initial);
    return text;
}

char *cli_edit_text(const char *initial, const char *suffix)
{
    const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/olievlek-XXXXXX%s", tmpdir, suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0) {
        fprintf(stderr, "olievlek: cannot create a file to edit in %s: %s\n", tmpdir,
                strerror(errno));
        return NULL;
    }
    size_t len = strlen(initial);
    int ok = write(fd, initial, len) == (ssize_t)len;
    close(fd);
    if (!ok) {
        unlink(path);
        return NULL;
    }
    const char *editor = getenv("VISUAL");
    if (!editor || !*editor)
        editor = getenv("EDITOR");
    if (!editor || !*editor)
        editor = "vi";
    /* Through the shell, as other tools do, so EDITOR may carry arguments ("code --wait"). */
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", editor, path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "olievlek: the editor (%s) did not finish cleanly; nothing was saved\n",
                editor);
        unlink(path);
        return NULL;
    }
    char *text = cli_read_file(path);
    unlink(path);
    if (text && strspn(text, " \t\r\n") == strlen(text)) {
        fprintf(stderr, "olievlek: the text is empty; nothing was saved\n");
        free(text);
        return NULL;
    }
    return text;
}
