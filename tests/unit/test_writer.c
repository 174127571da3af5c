/*
 * Unit tests of the group-commit writer on a real uv loop and a real LMDB store: every submitted
 * op completes exactly once, in submission order, on the loop thread; concurrent ops share
 * transactions; a stop drains what is queued; and what was acknowledged is on disk after reopen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "proto/error.h"
#include "server/writer.h"

typedef struct {
    char dir[64];
    ov_keypair *key;
    ov_store *store;
    uv_loop_t loop;
    ov_writer *writer;
    pthread_t loop_thread;

    int submitted;
    int done;
    int failed;
    int out_of_order;
    int wrong_thread;
    int stopped;
    int done_at_stop; /* completions seen when on_stopped ran */
    int stop_after;   /* call ov_writer_stop once this many are done (0: never from on_done) */
    ov_id duplicate;

    /* The flush hook's view (the flusher thread writes, the loop reads). */
    pthread_mutex_t flush_lock;
    uint64_t flushed_through; /* batches covered by a flush that has returned */
    int flushes;
    int answered_early; /* ops answered before a flush covering their batch returned */
    int feed_behind;    /* ops answered while the change feed did not show them yet */
} fixture;

static int open_store(fixture *f)
{
    ov_store_options options = {f->dir, (size_t)256 << 20, f->key, 0};
    return ov_store_open(&options, &f->store);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/ov-writer-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(ov_keypair_generate(&f->key), OV_OK);
    assert_int_equal(open_store(f), OV_OK);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->loop_thread = pthread_self();
    assert_int_equal(ov_writer_start(f->store, &f->loop, NULL, &f->writer), OV_OK);
    *state = f;
    return 0;
}

/* The flush as the writer would do it, only slower, and noting which batches it covered: every
 * batch committed before it began. An answer that did not wait for it would come within the
 * delay. */
static int slow_sync(ov_store *store, void *arg)
{
    fixture *f = arg;
    ov_writer_stats stats;
    ov_writer_get_stats(f->writer, &stats);
    usleep(3000);
    int rc = ov_store_sync(store);
    pthread_mutex_lock(&f->flush_lock);
    if (rc == OV_OK)
        f->flushed_through = stats.batches;
    f->flushes++;
    pthread_mutex_unlock(&f->flush_lock);
    return rc;
}

static int setup_slow_sync(void **state)
{
    assert_int_equal(setup(state), 0);
    fixture *f = *state;
    pthread_mutex_init(&f->flush_lock, NULL);
    /* Replace the plain writer with one that flushes through the hook. */
    ov_writer_stop(f->writer, NULL, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    ov_writer_free(f->writer);
    ov_writer_options options = {.sync = slow_sync, .sync_arg = f};
    assert_int_equal(ov_writer_start(f->store, &f->loop, &options, &f->writer), OV_OK);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ov_writer_free(f->writer);
    /* Every handle was closed: the loop ends clean. */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    ov_store_close(f->store);
    ov_keypair_free(f->key);
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void on_stopped(void *arg)
{
    fixture *f = arg;
    f->stopped++;
    f->done_at_stop = f->done;
}

static void on_done(ov_write_op *op)
{
    fixture *f = op->user;
    if (!pthread_equal(pthread_self(), f->loop_thread))
        f->wrong_thread++;
    /* The op's title says when it was submitted. */
    int index = atoi(json_string_value(json_object_get(op->content, "title")) + 5);
    if (index != f->done)
        f->out_of_order++;
    if (op->result != OV_OK)
        f->failed++;
    f->done++;
    ov_write_op_free(op);
    if (f->stop_after && f->done == f->stop_after)
        ov_writer_stop(f->writer, on_stopped, f);
}

static ov_write_op *new_case(fixture *f, int index)
{
    char title[32], school[OV_ID_CHARS + 1];
    snprintf(title, sizeof title, "Case %d", index);
    ov_id school_id;
    assert_int_equal(ov_id_generate(&school_id, 1790000000000ULL), OV_OK);
    ov_id_format(&school_id, school);
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
    assert_non_null(op);
    op->kind = OV_KIND_CASE;
    op->content = json_pack("{s:s, s:[s], s:s, s:s}", "title", title, "schools", school, "summary",
                            "Samenvatting", "phase", "adoptie");
    op->status = OV_STATUS_PUBLISHED;
    op->on_done = on_done;
    op->user = f;
    return op;
}

static void submit_cases(fixture *f, int count)
{
    for (int i = 0; i < count; i++) {
        ov_write_op *op = new_case(f, f->submitted);
        assert_int_equal(ov_writer_submit(f->writer, op), OV_OK);
        f->submitted++;
    }
}

static void count_stored(fixture *f, uint64_t *records, uint64_t *log_entries)
{
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_store_stats stats;
    assert_int_equal(ov_read_stats(read, &stats), OV_OK);
    ov_read_end(read);
    *records = stats.records;
    *log_entries = stats.log_entries;
}

static void test_thousand_ops_group_committed(void **state)
{
    fixture *f = *state;
    f->stop_after = 1000;
    submit_cases(f, 1000);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);

    assert_int_equal(f->done, 1000);
    assert_int_equal(f->failed, 0);
    assert_int_equal(f->out_of_order, 0);
    assert_int_equal(f->wrong_thread, 0);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(f->done_at_stop, 1000);

    ov_writer_stats stats;
    ov_writer_get_stats(f->writer, &stats);
    assert_int_equal(stats.ops, 1000);
    assert_int_equal(stats.queued, 0);
    assert_int_equal(stats.failed_commits, 0);
    /* Group commit happened: far fewer transactions than ops. */
    assert_true(stats.batches < 1000);
    assert_true(stats.batches >= 4); /* at most 256 per batch */
    uint64_t in_buckets = 0;
    for (int i = 0; i < 8; i++)
        in_buckets += stats.batch_size_buckets[i];
    assert_int_equal(in_buckets, stats.batches);

    /* Acknowledged means durable: a fresh environment sees everything. */
    ov_store_close(f->store);
    f->store = NULL;
    assert_int_equal(open_store(f), OV_OK);
    uint64_t records, entries;
    count_stored(f, &records, &entries);
    assert_int_equal(records, 1000);
    assert_int_equal(entries, 1000);
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_log_head head;
    uint8_t pub[OV_PUBKEY_BYTES];
    assert_int_equal(ov_read_head(read, ov_store_node_id(f->store), &head, pub), OV_OK);
    assert_int_equal(head.seq, 1000);
    assert_int_equal(ov_log_head_verify(&head, pub), OV_OK);
    ov_read_end(read);
}

static void on_done_after_flush(ov_write_op *op)
{
    fixture *f = op->user;
    pthread_mutex_lock(&f->flush_lock);
    if (op->batch == 0 || op->batch > f->flushed_through)
        f->answered_early++;
    pthread_mutex_unlock(&f->flush_lock);
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    if (op->result == OV_OK && ov_read_last_change(read) < op->meta.change_seq)
        f->feed_behind++;
    ov_read_end(read);
    on_done(op);
}

/* The acknowledgement protocol: an op is answered only after a flush that began after its batch
 * was committed has returned. */
static void test_answers_wait_for_the_flush(void **state)
{
    fixture *f = *state;
    f->stop_after = 500;
    for (int i = 0; i < 500; i++) {
        ov_write_op *op = new_case(f, f->submitted);
        op->on_done = on_done_after_flush;
        assert_int_equal(ov_writer_submit(f->writer, op), OV_OK);
        f->submitted++;
        if (i % 50 == 49)
            usleep(1000); /* several batches, some committed while a flush is under way */
    }
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->done, 500);
    assert_int_equal(f->failed, 0);
    assert_int_equal(f->out_of_order, 0);
    assert_int_equal(f->answered_early, 0);
    assert_int_equal(f->feed_behind, 0);
    ov_writer_stats stats;
    ov_writer_get_stats(f->writer, &stats);
    assert_true(stats.batches >= 2);
    assert_int_equal(stats.durable_batches, stats.batches);
    assert_int_equal(stats.syncs, (uint64_t)f->flushes);
    assert_true(stats.syncs <= stats.batches); /* one flush may cover several batches */
    assert_int_equal(stats.failed_syncs, 0);
    pthread_mutex_destroy(&f->flush_lock);
}

static void test_stop_drains_queue_and_refuses_more(void **state)
{
    fixture *f = *state;
    submit_cases(f, 300);
    ov_writer_stop(f->writer, on_stopped, f);
    ov_write_op *late = new_case(f, 9999);
    assert_int_equal(ov_writer_submit(f->writer, late), OV_ESHUTDOWN);
    ov_write_op_free(late);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);

    assert_int_equal(f->done, 300);
    assert_int_equal(f->failed, 0);
    assert_int_equal(f->out_of_order, 0);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(f->done_at_stop, 300);
    uint64_t records, entries;
    count_stored(f, &records, &entries);
    assert_int_equal(records, 300);
}

static void on_done_expect(ov_write_op *op)
{
    fixture *f = op->user;
    int index = atoi(json_string_value(json_object_get(op->content, "title")) + 5);
    /* Every other op reuses one id: only the first of them may succeed. */
    int want = (index % 2 == 1 && index > 1) ? OV_EEXISTS : OV_OK;
    if (op->result != want)
        f->failed++;
    if (index != f->done)
        f->out_of_order++;
    f->done++;
    ov_write_op_free(op);
    if (f->done == f->submitted)
        ov_writer_stop(f->writer, on_stopped, f);
}

static void test_failing_ops_do_not_spoil_their_batch(void **state)
{
    fixture *f = *state;
    assert_int_equal(ov_id_generate(&f->duplicate, 1795000000000ULL), OV_OK);
    for (int i = 0; i < 50; i++) {
        ov_write_op *op = new_case(f, i);
        op->on_done = on_done_expect;
        if (i % 2 == 1)
            op->id = f->duplicate;
        assert_int_equal(ov_writer_submit(f->writer, op), OV_OK);
        f->submitted++;
    }
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->done, 50);
    assert_int_equal(f->failed, 0);
    assert_int_equal(f->out_of_order, 0);
    uint64_t records, entries;
    count_stored(f, &records, &entries);
    assert_int_equal(records, 26);
    assert_int_equal(entries, 26);
}

/* Ops whose on_done is missing could never be handed back: refused at the door. */
static void test_submit_without_callback_refused(void **state)
{
    fixture *f = *state;
    ov_write_op *op = new_case(f, 0);
    op->on_done = NULL;
    assert_int_equal(ov_writer_submit(f->writer, op), OV_EINVAL);
    ov_write_op_free(op);
    ov_writer_stop(f->writer, on_stopped, f);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->stopped, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_thousand_ops_group_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains_queue_and_refuses_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_ops_do_not_spoil_their_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_without_callback_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answers_wait_for_the_flush, setup_slow_sync, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
