/*
 * The single writer with group commit.
 *
 * The loop thread queues ops under a mutex and signals a condition variable. The writer thread
 * takes everything queued at that moment (up to max_batch), applies it in one LMDB write
 * transaction and commits it, so concurrent requests share one fsync. The commit returns with the
 * batch's pages on disk but its meta page not yet flushed (ov_store_write_commit_unflushed), and
 * the batch goes to the unflushed list. A second thread, the flusher, takes everything on that
 * list, calls ov_store_sync, and only then moves those ops to the done list and wakes the loop
 * with uv_async_send; the async callback runs on_done for each op in submission order. So a
 * request is answered only after its batch is durable, and the writer builds the next batch
 * while the flusher waits for the disk (docs/architecture.md, "Durable writes").
 *
 * Stopping: ov_writer_stop refuses new ops; the writer drains the queue and marks itself
 * finished; the flusher flushes what is left, marks the pair done and wakes the loop once more.
 * The async callback that sees "done" after delivering the last ops joins both threads and closes
 * the async handle; on_stopped runs from its close callback.
 */
#include "server/writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/error.h"

#define DEFAULT_MAX_BATCH 256

struct ov_writer {
    ov_store *store;
    uv_loop_t *loop;
    uv_async_t async;
    pthread_t thread, flusher;
    size_t max_batch;
    int (*sync)(ov_store *store, void *arg);
    void *sync_arg;

    pthread_mutex_t lock;
    pthread_cond_t wake;  /* the writer: ops queued, or stopping */
    pthread_cond_t flush; /* the flusher: batches committed, or the writer finished */
    /* Guarded by lock. */
    ov_write_op *queue_head, *queue_tail;
    size_t queued;
    ov_write_op *unflushed_head, *unflushed_tail; /* committed, not yet known to be durable */
    uint64_t unflushed_batch;                     /* the last batch on that list */
    ov_write_op *done_head, *done_tail;
    int stopping;    /* no new ops; the writer exits once the queue is empty */
    int writer_done; /* the writer has handed over its last batch */
    int thread_done; /* the flusher has handed over the last ops: both threads are ending */
    ov_writer_stats stats;

    void (*on_committed)(void *arg);
    void *committed_arg;
    uint64_t last_signed_ms; /* writer thread only */
    int head_pending;        /* writer thread only: entries after the signed head */
    int head_signed;         /* under lock: a head was signed by a commit of its own */

    /* Loop thread only. */
    int closing;
    void (*on_stopped)(void *arg);
    void *stopped_arg;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int bucket_of(size_t n)
{
    if (n <= 1)
        return 0;
    if (n <= 4)
        return 1;
    if (n <= 16)
        return 2;
    if (n <= 64)
        return 3;
    if (n <= 256)
        return 4;
    return 5;
}

/* Signing a head costs ~0.3 ms of CPU, as much as the rest of a 30-op batch. A batch commits its
 * entries (durable and chained) with a new signature only when the last one is at least this old;
 * otherwise the head is signed by a later batch, or, when no batch comes, by a commit of its own
 * once the interval is over. So heads are signed at most ~100 times a second, and a quiet node's
 * head covers its whole log within this interval. */
#define SIGN_INTERVAL_MS 10

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void fail_ops(ov_write_op *op, int rc)
{
    for (; op; op = op->next) {
        op->result = rc;
        free(op->canon);
        op->canon = NULL;
        op->canon_len = 0;
    }
}

/* Applies one batch (a NULL-terminated chain) in one transaction, commits it unflushed and hands
 * it to the flusher. */
static void run_batch(ov_writer *writer, ov_write_op *batch, ov_write_op *last, size_t count)
{
    ov_wtxn *txn = NULL;
    int rc = ov_store_write_begin(writer->store, &txn);
    if (rc == OV_OK)
        rc = ov_store_apply_batch(&txn, batch, now_ms());
    if (rc == OV_OK) {
        uint64_t mono = monotonic_ms();
        int sign = mono - writer->last_signed_ms >= SIGN_INTERVAL_MS;
        int pending = ov_store_write_head_pending(txn);
        rc = ov_store_write_commit_unflushed(txn, sign);
        if (rc == OV_OK && pending) {
            if (sign)
                writer->last_signed_ms = mono;
            writer->head_pending = !sign;
        }
    }
    if (rc != OV_OK)
        fail_ops(batch, rc); /* nothing of the batch reached the disk, whatever each op did */
    pthread_mutex_lock(&writer->lock);
    uint64_t number = ++writer->stats.batches;
    for (ov_write_op *op = batch; op; op = op->next)
        op->batch = number;
    writer->stats.ops += count;
    if (rc != OV_OK)
        writer->stats.failed_commits++;
    writer->stats.batch_size_buckets[bucket_of(count)]++;
    /* A failed batch goes the same way, so that answers stay in submission order. */
    if (writer->unflushed_tail)
        writer->unflushed_tail->next = batch;
    else
        writer->unflushed_head = batch;
    writer->unflushed_tail = last;
    writer->unflushed_batch = number;
    pthread_cond_signal(&writer->flush);
    pthread_mutex_unlock(&writer->lock);
}

/* Signs the head over entries that batches committed without signing. A failure leaves them for
 * the next attempt (the next batch, or ov_store_open after a restart). */
static void sign_pending_head(ov_writer *writer)
{
    ov_wtxn *txn = NULL;
    if (ov_store_write_begin(writer->store, &txn) != OV_OK)
        return;
    /* Durable at once (nothing waits for it, so the flush may as well happen here). */
    if (ov_store_write_commit_ex(txn, 1) == OV_OK) {
        writer->head_pending = 0;
        writer->last_signed_ms = monotonic_ms();
        /* A new signed head is news for the loop too (peers are sent entries only up to a signed
         * head), although no op completes with it. */
        pthread_mutex_lock(&writer->lock);
        writer->head_signed = 1;
        pthread_mutex_unlock(&writer->lock);
        uv_async_send(&writer->async);
    }
}

static void *writer_main(void *arg)
{
    ov_writer *writer = arg;
    pthread_mutex_lock(&writer->lock);
    for (;;) {
        while (!writer->queue_head && !writer->stopping) {
            if (!writer->head_pending) {
                pthread_cond_wait(&writer->wake, &writer->lock);
                continue;
            }
            uint64_t due = writer->last_signed_ms + SIGN_INTERVAL_MS;
            struct timespec until = {(time_t)(due / 1000), (long)(due % 1000) * 1000000};
            if (pthread_cond_timedwait(&writer->wake, &writer->lock, &until) == ETIMEDOUT &&
                !writer->queue_head) {
                pthread_mutex_unlock(&writer->lock);
                sign_pending_head(writer);
                pthread_mutex_lock(&writer->lock);
            }
        }
        if (!writer->queue_head) {
            if (writer->head_pending) { /* stopping: leave a signed head behind */
                pthread_mutex_unlock(&writer->lock);
                sign_pending_head(writer);
                pthread_mutex_lock(&writer->lock);
            }
            break; /* stopping and drained */
        }
        ov_write_op *batch = writer->queue_head, *last = batch;
        size_t count = 1;
        while (last->next && count < writer->max_batch) {
            last = last->next;
            count++;
        }
        writer->queue_head = last->next;
        if (!writer->queue_head)
            writer->queue_tail = NULL;
        writer->queued -= count;
        last->next = NULL;
        pthread_mutex_unlock(&writer->lock);

        run_batch(writer, batch, last, count);

        pthread_mutex_lock(&writer->lock);
    }
    writer->writer_done = 1;
    pthread_cond_signal(&writer->flush);
    pthread_mutex_unlock(&writer->lock);
    return NULL;
}

static int default_sync(ov_store *store, void *arg)
{
    (void)arg;
    return ov_store_sync(store);
}

/* The flusher: makes committed batches durable with one ov_store_sync for all that are waiting,
 * then hands their ops to the loop. Every batch on the list was committed before the sync began,
 * so the sync's fdatasync covers its meta page. */
static void *flusher_main(void *arg)
{
    ov_writer *writer = arg;
    pthread_mutex_lock(&writer->lock);
    for (;;) {
        while (!writer->unflushed_head && !writer->writer_done)
            pthread_cond_wait(&writer->flush, &writer->lock);
        if (!writer->unflushed_head)
            break; /* the writer finished and everything it committed is delivered */
        ov_write_op *ops = writer->unflushed_head, *last = writer->unflushed_tail;
        uint64_t through = writer->unflushed_batch;
        writer->unflushed_head = writer->unflushed_tail = NULL;
        pthread_mutex_unlock(&writer->lock);

        int rc = writer->sync(writer->store, writer->sync_arg);
        if (rc != OV_OK)
            fail_ops(ops, rc); /* durability unknown: none of them may be acknowledged */

        pthread_mutex_lock(&writer->lock);
        writer->stats.syncs++;
        if (rc != OV_OK)
            writer->stats.failed_syncs++;
        writer->stats.durable_batches = through;
        if (writer->done_tail)
            writer->done_tail->next = ops;
        else
            writer->done_head = ops;
        writer->done_tail = last;
        pthread_mutex_unlock(&writer->lock);
        uv_async_send(&writer->async);
        pthread_mutex_lock(&writer->lock);
    }
    writer->thread_done = 1;
    pthread_mutex_unlock(&writer->lock);
    uv_async_send(&writer->async);
    return NULL;
}

static void on_async_closed(uv_handle_t *handle)
{
    ov_writer *writer = handle->data;
    if (writer->on_stopped)
        writer->on_stopped(writer->stopped_arg);
}

static void on_async(uv_async_t *async)
{
    ov_writer *writer = async->data;
    pthread_mutex_lock(&writer->lock);
    ov_write_op *op = writer->done_head;
    writer->done_head = writer->done_tail = NULL;
    int finished = writer->thread_done;
    int head_signed = writer->head_signed;
    writer->head_signed = 0;
    pthread_mutex_unlock(&writer->lock);

    int delivered = op != NULL || head_signed;
    while (op) {
        ov_write_op *next = op->next;
        op->next = NULL;
        op->on_done(op); /* may free op, or submit it again */
        op = next;
    }
    if (delivered && writer->on_committed)
        writer->on_committed(writer->committed_arg);
    /* thread_done is set after the last batch was put on the done list, so everything has been
     * delivered once it is seen. */
    if (finished && !writer->closing) {
        writer->closing = 1;
        pthread_join(writer->thread, NULL);
        pthread_join(writer->flusher, NULL);
        uv_close((uv_handle_t *)&writer->async, on_async_closed);
    }
}

static void on_failed_start_closed(uv_handle_t *handle)
{
    ov_writer *writer = handle->data;
    pthread_cond_destroy(&writer->flush);
    pthread_cond_destroy(&writer->wake);
    pthread_mutex_destroy(&writer->lock);
    free(writer);
}

int ov_writer_start(ov_store *store, uv_loop_t *loop, const ov_writer_options *options,
                    ov_writer **out)
{
    *out = NULL;
    ov_writer *writer = calloc(1, sizeof *writer);
    if (!writer)
        return OV_ENOMEM;
    writer->store = store;
    writer->loop = loop;
    writer->max_batch = options && options->max_batch ? options->max_batch : DEFAULT_MAX_BATCH;
    writer->sync = default_sync;
    if (options) {
        writer->on_committed = options->on_committed;
        writer->committed_arg = options->committed_arg;
        if (options->sync) {
            writer->sync = options->sync;
            writer->sync_arg = options->sync_arg;
        }
    }
    pthread_mutex_init(&writer->lock, NULL);
    pthread_condattr_t cond_attr;
    pthread_condattr_init(&cond_attr);
    pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC); /* the signing deadline's clock */
    pthread_cond_init(&writer->wake, &cond_attr);
    pthread_condattr_destroy(&cond_attr);
    pthread_cond_init(&writer->flush, NULL);
    if (uv_async_init(loop, &writer->async, on_async) != 0) {
        pthread_cond_destroy(&writer->flush);
        pthread_cond_destroy(&writer->wake);
        pthread_mutex_destroy(&writer->lock);
        free(writer);
        return OV_EIO;
    }
    writer->async.data = writer;
    if (pthread_create(&writer->thread, NULL, writer_main, writer) != 0) {
        /* The handle is registered with the loop; the memory goes in its close callback. */
        uv_close((uv_handle_t *)&writer->async, on_failed_start_closed);
        return OV_EIO;
    }
    if (pthread_create(&writer->flusher, NULL, flusher_main, writer) != 0) {
        /* Nothing was submitted yet: the writer sees "stopping" and ends without a batch. */
        pthread_mutex_lock(&writer->lock);
        writer->stopping = 1;
        pthread_cond_signal(&writer->wake);
        pthread_mutex_unlock(&writer->lock);
        pthread_join(writer->thread, NULL);
        uv_close((uv_handle_t *)&writer->async, on_failed_start_closed);
        return OV_EIO;
    }
    *out = writer;
    return OV_OK;
}

int ov_writer_submit(ov_writer *writer, ov_write_op *op)
{
    if (!op->on_done)
        return OV_EINVAL; /* nobody would ever get the op back */
    op->next = NULL;
    pthread_mutex_lock(&writer->lock);
    if (writer->stopping) {
        pthread_mutex_unlock(&writer->lock);
        return OV_ESHUTDOWN;
    }
    if (writer->queue_tail)
        writer->queue_tail->next = op;
    else
        writer->queue_head = op;
    writer->queue_tail = op;
    writer->queued++;
    pthread_cond_signal(&writer->wake);
    pthread_mutex_unlock(&writer->lock);
    return OV_OK;
}

void ov_writer_stop(ov_writer *writer, void (*on_stopped)(void *arg), void *arg)
{
    pthread_mutex_lock(&writer->lock);
    int already = writer->stopping;
    if (!already) {
        writer->on_stopped = on_stopped;
        writer->stopped_arg = arg;
        writer->stopping = 1;
        pthread_cond_signal(&writer->wake);
    }
    pthread_mutex_unlock(&writer->lock);
}

void ov_writer_free(ov_writer *writer)
{
    if (!writer)
        return;
    pthread_cond_destroy(&writer->flush);
    pthread_cond_destroy(&writer->wake);
    pthread_mutex_destroy(&writer->lock);
    free(writer);
}

void ov_writer_get_stats(ov_writer *writer, ov_writer_stats *stats)
{
    pthread_mutex_lock(&writer->lock);
    *stats = writer->stats;
    stats->queued = writer->queued;
    pthread_mutex_unlock(&writer->lock);
}
