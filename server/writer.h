/*
 * The single writer with group commit.
 *
 * Handlers on the event loop submit write ops; a dedicated writer thread takes every op queued at
 * that moment (up to max_batch), applies them in one LMDB write transaction and commits it; a
 * second thread makes the commit durable (ov_store_sync) while the writer goes on with the next
 * batch, and only then hands the finished ops back to the loop through a uv_async, where each
 * op's on_done runs. So a request is acknowledged only after its data is on disk, and 64
 * concurrent writers share the flushes of one batch rather than paying 64.
 */
#ifndef OV_WRITER_H
#define OV_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server/store.h"

typedef struct ov_writer ov_writer;

typedef struct {
    size_t max_batch; /* ops per transaction; 0 = 256 */
    /* Called on the loop after the completions of committed batches have run: the store (and its
     * change feed) may have grown. May be NULL. */
    void (*on_committed)(void *arg);
    void *committed_arg;
    /* Makes every batch committed before the call durable; NULL = ov_store_sync. Called on the
     * flusher thread without the writer's lock. Tests wrap it to check that no op is answered
     * before the flush that covers it has returned. */
    int (*sync)(ov_store *store, void *arg);
    void *sync_arg;
} ov_writer_options;

typedef struct {
    uint64_t batches; /* committed (or failed) so far; ov_write_op.batch is the op's number */
    uint64_t durable_batches; /* batches 1..durable_batches are flushed and may be answered */
    uint64_t syncs;           /* flushes done (one may cover several batches) */
    uint64_t failed_syncs;
    uint64_t ops;
    uint64_t failed_commits;
    uint64_t batch_size_buckets[8]; /* ops per batch: 1, 2-4, 5-16, 17-64, 65-256, 257+, … */
    size_t queued;
} ov_writer_stats;

/* Starts the writer thread. Completions run on loop. *out owned by the caller. Errors: OV_ENOMEM,
 * OV_EIO (thread creation; the async handle is then already closing on loop and releases its
 * memory when the loop runs). */
int ov_writer_start(ov_store *store, uv_loop_t *loop, const ov_writer_options *options,
                    ov_writer **out);

/* Queues op (loop thread only). op->on_done is called later on the loop thread with op->result
 * set; the op is the caller's again from then on. Returns OV_OK, OV_EINVAL when op->on_done is
 * NULL, or OV_ESHUTDOWN after ov_writer_stop (op untouched, on_done not called in both cases). */
int ov_writer_submit(ov_writer *writer, ov_write_op *op);

/* Stops accepting ops, lets the thread finish every queued op (their on_done still run), joins
 * the thread and closes the async handle; on_stopped(arg) runs on the loop when all is done. Free
 * with ov_writer_free after that. */
void ov_writer_stop(ov_writer *writer, void (*on_stopped)(void *arg), void *arg);
void ov_writer_free(ov_writer *writer);

void ov_writer_get_stats(ov_writer *writer, ov_writer_stats *stats);

#endif
