/*
 * libolievlek: an offline replica of an Olievlek node, for brigadiers who work without network.
 *
 * A replica is a directory holding an LMDB store: the records pulled from one node (within a
 * chosen scope), verified against the origins' signed heads before they are stored; a durable
 * queue of local edits waiting to be pushed; the conflicts and rejections pushes brought back;
 * and a history of what happened. The node protocol is docs/protocol.md §9.
 *
 * Conventions:
 * - Functions return OLIEVLEK_OK (0) or a negative olievlek_status. After a failure,
 *   olievlek_last_error(replica) describes it in a sentence that says what to do; it stays valid
 *   until the next call on that replica.
 * - Strings given to the library are UTF-8 and borrowed for the call only.
 * - Strings and buffers returned through char ** are owned by the caller: free them with
 *   olievlek_free. Strings handed to callbacks are borrowed until the callback returns.
 * - A replica handle is used by one thread at a time. Two processes may open the same directory:
 *   LMDB serialises their writers, and pulls and pushes take a lock file so only one runs at once.
 */
#ifndef OLIEVLEK_H
#define OLIEVLEK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    OLIEVLEK_OK = 0,
    OLIEVLEK_EINVAL = -1,    /* a bad argument (an unknown kind, a malformed id, …) */
    OLIEVLEK_ENOTFOUND = -2, /* no such record, conflict or replica */
    OLIEVLEK_EEXISTS = -3,   /* the directory already holds a replica */
    OLIEVLEK_ESCHEMA = -4,   /* the record does not validate: see olievlek_validation */
    OLIEVLEK_ENETWORK = -5,  /* the node could not be reached or the connection broke */
    OLIEVLEK_EAUTH = -6,     /* not logged in, or the token is no longer valid */
    OLIEVLEK_EDENIED = -7,   /* the node refused: this account may not do that */
    OLIEVLEK_EVERIFY = -8,   /* what the node sent does not verify (forged, broken chain, fork) */
    OLIEVLEK_EPROTO = -9,    /* the node answered something this client does not understand */
    OLIEVLEK_ESTORE = -10,   /* the replica's store failed (disk full, corrupt, permissions) */
    OLIEVLEK_EBUSY = -11,    /* another pull or push on this replica is running */
    OLIEVLEK_ENOMEM = -12,
    OLIEVLEK_ECONFLICT = -13 /* the record has an unresolved conflict: resolve it first */
} olievlek_status;

typedef struct olievlek_replica olievlek_replica;

/* A short English name of status ("network error"); never NULL. */
const char *olievlek_strerror(int status);
/* The last failure on replica, a sentence; "" when none. NULL replica: the last failure of
 * olievlek_create/olievlek_open on this thread. */
const char *olievlek_last_error(const olievlek_replica *replica);
void olievlek_free(void *p);

/* ---- Creating and opening ---------------------------------------------------------------- */

typedef struct {
    const char *node_url; /* http://host:port of the node */
    /* The node id to trust (26 characters, the fingerprint of the node's key as its admin page
     * and `olievlekd node-id` show it). NULL: trust the id the node reports on first contact and
     * pin it from then on. */
    const char *node_id;
    /* Which origins to keep: 0 the whole national network (every origin the node holds), 1 only
     * the node's own records (its region). */
    int region_only;
    /* Kinds to keep content of ("case,lesson,visit"); NULL or "": every kind. */
    const char *kinds;
} olievlek_clone_options;

/* Creates a replica in dir (created if missing, mode 0700), contacts the node to learn (or
 * check) its id, and stores the options. Nothing is pulled yet: call olievlek_pull. Errors:
 * OLIEVLEK_EEXISTS, OLIEVLEK_ENETWORK, OLIEVLEK_EVERIFY (the node's id is not the one given),
 * OLIEVLEK_ESTORE, OLIEVLEK_EINVAL. *out is closed with olievlek_close. */
int olievlek_create(const char *dir, const olievlek_clone_options *options, olievlek_replica **out);
/* Opens an existing replica. Errors: OLIEVLEK_ENOTFOUND (no replica there), OLIEVLEK_ESTORE. */
int olievlek_open(const char *dir, olievlek_replica **out);
void olievlek_close(olievlek_replica *replica);

/* ---- Account ----------------------------------------------------------------------------- */

/* Signs in at the node; the session token is stored in <dir>/token, readable only by its owner
 * (mode 0600). Errors: OLIEVLEK_EAUTH (wrong name or password), OLIEVLEK_ENETWORK,
 * OLIEVLEK_EDENIED (too many attempts: try later), OLIEVLEK_ESTORE. */
int olievlek_login(olievlek_replica *replica, const char *username, const char *password);
/* Ends the session at the node (when reachable) and removes the token file. */
int olievlek_logout(olievlek_replica *replica);

/* ---- Syncing ----------------------------------------------------------------------------- */

typedef struct {
    uint64_t records;     /* records stored or updated so far in this pull */
    uint64_t entries;     /* log entries verified so far */
    uint64_t entries_due; /* entries the node has that this replica lacked when the pull began
                             (an estimate until the node's summary arrived; 0 if unknown) */
    uint64_t bytes;       /* bytes received */
    double seconds;       /* since the pull began */
} olievlek_progress;

/* Called during pull after every stored batch; return non-zero to stop (what is stored stays). */
typedef int (*olievlek_progress_fn)(void *ctx, const olievlek_progress *progress);

/* Fetches what the node has beyond this replica, verifies every run (hash chain, content hashes,
 * the origin's signed head) and stores it; resumes where an interrupted pull stopped.
 * progress may be NULL. *result (may be NULL) receives the totals. Errors: OLIEVLEK_ENETWORK,
 * OLIEVLEK_EVERIFY (nothing of the failing run is stored), OLIEVLEK_EPROTO, OLIEVLEK_EAUTH,
 * OLIEVLEK_EBUSY, OLIEVLEK_ESTORE. */
int olievlek_pull(olievlek_replica *replica, olievlek_progress_fn progress, void *ctx,
                  olievlek_progress *result);

typedef struct {
    unsigned accepted;  /* edits the node accepted */
    unsigned conflicts; /* edits whose base changed meanwhile: see olievlek_conflicts */
    unsigned rejected;  /* edits the node refused (validation): see olievlek_edits */
    unsigned pending;   /* edits still waiting (the node could not be reached mid-way) */
} olievlek_push_result;

/* Sends queued edits in the order they were made, each with its mutation id, so a retry after
 * an interruption never applies an edit twice. Stops at the first network failure (the rest
 * stays queued). Errors: OLIEVLEK_ENETWORK, OLIEVLEK_EAUTH (log in again), OLIEVLEK_EBUSY,
 * OLIEVLEK_ESTORE; conflicts and rejections are not errors: they are counted in *result. */
int olievlek_push(olievlek_replica *replica, olievlek_push_result *result);

/* ---- Reading ----------------------------------------------------------------------------- */

typedef struct {
    const char *node_url;
    const char *node_id;
    const char *username; /* NULL when not logged in */
    int region_only;
    const char *kinds; /* "" for every kind */
    uint64_t records;  /* records held (tombstones not counted) */
    unsigned pending;  /* edits waiting to be pushed */
    unsigned conflicts;
    unsigned rejected;
    unsigned origins;     /* origins with a verified head */
    int64_t last_pull_ms; /* 0: never */
    int64_t last_push_ms; /* 0: never */
} olievlek_info;

/* Fills *info; its strings stay valid until the next call on replica. */
int olievlek_status_info(olievlek_replica *replica, olievlek_info *info);

/* One record as the replica shows it: with a local edit waiting, the edited version. */
typedef struct {
    const char *id;
    const char *kind;
    const char *title;
    const char *status;  /* draft, published, deleted */
    const char *origin;  /* node id of the record's authority */
    const char *updated; /* RFC 3339 */
    uint32_t version;    /* the node's version this shows or is based on; 0 for a new record */
    int local;           /* 1: a local edit of this record waits to be pushed */
    int conflict;        /* 1: an unresolved conflict */
    const char *json;    /* the whole record, canonical JSON */
} olievlek_record;

typedef int (*olievlek_record_fn)(void *ctx, const olievlek_record *record);

/* Every record of kind (NULL: every kind), newest first; deleted ones only when
 * include_deleted. fn returns non-zero to stop. */
int olievlek_list(olievlek_replica *replica, const char *kind, int include_deleted,
                  olievlek_record_fn fn, void *ctx);
/* One record by id (26 characters). OLIEVLEK_ENOTFOUND when the replica does not hold it. */
int olievlek_get(olievlek_replica *replica, const char *id, olievlek_record_fn fn, void *ctx);

typedef struct {
    const olievlek_record *record;
    double score;
    const char *snippet; /* a few words around the best match, matches between « and » */
} olievlek_hit;
typedef int (*olievlek_hit_fn)(void *ctx, const olievlek_hit *hit);

/* Searches the replica with the node's Dutch analysis (word forms, diacritics, stopwords; the last
 * word also as a prefix; "phrases in quotes"), ranked by BM25 with titles weighing most. kind may
 * be NULL. Hits are delivered best first, at most limit (1–1000). */
int olievlek_search(olievlek_replica *replica, const char *query, const char *kind, unsigned limit,
                    olievlek_hit_fn fn, void *ctx);

/* ---- Editing (offline) ------------------------------------------------------------------- */

/* Field problems of the last OLIEVLEK_ESCHEMA: count, then each field and its message in the
 * language asked for ("nl" or "en"). Valid until the next call on replica. */
unsigned olievlek_validation_count(const olievlek_replica *replica);
const char *olievlek_validation_field(const olievlek_replica *replica, unsigned i);
const char *olievlek_validation_message(const olievlek_replica *replica, unsigned i,
                                        const char *lang);

/* Queues a new record of kind from JSON content (the kind's fields; envelope members are set
 * here). Validated as the node will validate it; OLIEVLEK_ESCHEMA lists what is wrong and
 * queues nothing. *id_out (may be NULL) receives the new record's id (caller frees). The edit is
 * durable when this returns. */
int olievlek_new(olievlek_replica *replica, const char *kind, const char *json, char **id_out);
/* Queues a change of record id to the given content (the whole record, as olievlek_get shows it
 * or with fields changed). Errors: OLIEVLEK_ENOTFOUND, OLIEVLEK_ESCHEMA, OLIEVLEK_ECONFLICT
 * (resolve the open conflict first), OLIEVLEK_EINVAL (a deleted record). */
int olievlek_edit(olievlek_replica *replica, const char *id, const char *json);
/* Queues the deletion of record id. */
int olievlek_delete(olievlek_replica *replica, const char *id);

/* A template to fill in for a new record of kind (JSON with every field, empty), caller frees. */
int olievlek_template(olievlek_replica *replica, const char *kind, char **json_out);

/* ---- Edits, conflicts, history ----------------------------------------------------------- */

typedef struct {
    const char *mutation_id;
    const char *op; /* create, update, delete */
    const char *kind;
    const char *id;
    const char *title;
    const char *state;  /* pending, rejected */
    const char *reason; /* for rejected: the node's explanation with each field's problem */
    int64_t queued_ms;
} olievlek_edit_info;
typedef int (*olievlek_edit_fn)(void *ctx, const olievlek_edit_info *edit);
/* The queued edits in the order they will be pushed, then the rejected ones. */
int olievlek_edits(olievlek_replica *replica, olievlek_edit_fn fn, void *ctx);

typedef struct {
    const char *id;
    const char *kind;
    const char *title;
    uint32_t base_version;  /* the version the local edit started from */
    uint32_t their_version; /* the node's version now (0: the record was deleted there) */
    const char *mine;       /* the local version, canonical JSON; NULL for a local deletion */
    const char *theirs;     /* the node's version now (a tombstone when deleted) */
} olievlek_conflict;
typedef int (*olievlek_conflict_fn)(void *ctx, const olievlek_conflict *conflict);
int olievlek_conflicts(olievlek_replica *replica, olievlek_conflict_fn fn, void *ctx);

typedef enum {
    OLIEVLEK_KEEP_MINE,   /* push the local version on top of the node's current one */
    OLIEVLEK_KEEP_THEIRS, /* drop the local edit */
    OLIEVLEK_MERGED       /* push merged_json (a whole record) on top of the node's current one */
} olievlek_resolution;
/* Resolves the conflict on record id. For a record deleted at the node, KEEP_MINE and MERGED
 * queue a new record with the local content (deleted records do not come back under their old
 * id). Errors: OLIEVLEK_ENOTFOUND (no conflict), OLIEVLEK_ESCHEMA (merged_json invalid). */
int olievlek_resolve(olievlek_replica *replica, const char *id, olievlek_resolution how,
                     const char *merged_json);
/* Drops a rejected edit (after the user fixed it in a new edit, or gave up). */
int olievlek_discard(olievlek_replica *replica, const char *mutation_id);

typedef struct {
    int64_t time_ms;
    const char *what; /* a line: "pulled 12 records from 2 origins", "pushed case … : version 3" */
} olievlek_event;
typedef int (*olievlek_event_fn)(void *ctx, const olievlek_event *event);
/* The replica's history, newest first, at most limit events. */
int olievlek_history(olievlek_replica *replica, unsigned limit, olievlek_event_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
