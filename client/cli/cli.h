/*
 * Pieces of the olievlek command line shared by its files: the progress display and the editor.
 */
#ifndef OLV_CLI_H
#define OLV_CLI_H

#include <stdio.h>

#include "olievlek.h"

/* Progress of a pull on stderr: a bar redrawn in place on a terminal, a plain line every few
 * seconds otherwise, nothing when quiet. */
typedef struct {
    int tty;
    int quiet;
    double last_shown;
    int drawn;
} cli_progress;

void cli_progress_init(cli_progress *p, int quiet);
int cli_progress_update(void *ctx, const olievlek_progress *progress);
void cli_progress_done(cli_progress *p, const olievlek_progress *progress);
/* "12.3 MB" */
void cli_format_bytes(double bytes, char *out, size_t size);

/* Lets the user write text in $VISUAL / $EDITOR (else vi): the file starts with initial; lines
 * starting with '#' are comments and are removed from the result. Returns the malloc'd text, or
 * NULL (with a message on stderr) when the editor failed or the text was left empty. */
char *cli_edit_text(const char *initial, const char *suffix);
/* cli_edit_text of header (comment lines) followed by body and a newline. */
char *cli_edit_below(const char *header, const char *body);
/* Reads a whole file ("-" for standard input), comments removed as above. NULL on failure. */
char *cli_read_file(const char *path);
/* Removes '#' comment lines in place. */
void cli_strip_comments(char *text);

#endif
