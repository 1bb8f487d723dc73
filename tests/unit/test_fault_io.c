/*
 * test_fault_io.c - the fault backend (io/fault.c) over the mem backend:
 * each action does exactly what it says to exactly the matching call and
 * nothing else, checked against the bytes of the mem file: err fails only
 * the matching call, short and torn persist exactly the first bytes or
 * sectors, flip changes exactly N bits, delay delays, crash restores the
 * pre-images and the size of every unflushed change and fails later calls
 * (also on another file of the same engine), the crash limit refuses
 * instead of pretending; events, counters and the callback match; rules
 * change while other threads do I/O.  Then whole images: open, BAT and
 * close faults through vhdx_open()/vhdx_close().
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lib/unit.h"
#include "io/fault.h"

#define FILE_LEN (64 * 1024)

struct fx {
	struct vhdx_faults *f;
	struct vhdx_io *mem; /* owned by io */
	struct vhdx_io *io;  /* the fault io */
	uint8_t orig[FILE_LEN];
};

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + (i >> 8) + 1);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);

	for (size_t i = 0; i < FILE_LEN; i++)
		x->orig[i] = pattern(i);
	if (vhdx_faults_new(&x->f) < 0 || vhdx_io_mem_new(x->orig, FILE_LEN, "/imgs/disk.vhdx", &x->mem) < 0 ||
	    vhdx_io_fault_new(x->f, x->mem, &x->io) < 0)
		return -1;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	vhdx_io_close(x->io);
	vhdx_faults_free(x->f);
	free(x);
	return 0;
}

/* The bytes of the file under the fault io, which must be LEN long. */
static const uint8_t *file_bytes(struct fx *x, size_t len)
{
	size_t have;
	const uint8_t *d = vhdx_io_mem_data(x->mem, &have);

	assert_int_equal(have, len);
	return d;
}

static void add(struct fx *x, const char *rules, int n)
{
	int ret = vhdx_faults_add(x->f, rules);
	if (ret != n)
		fail_msg("adding '%s' returned %d: %s", rules, ret, vhdx_errmsg());
}

static char *events(struct fx *x)
{
	char *t = NULL;
	assert_ok(vhdx_faults_format_events(x->f, 0, &t, NULL));
	return t;
}

static void stats(struct fx *x, struct vhdx_faults_stats *st)
{
	memset(st, 0, sizeof *st);
	st->struct_size = sizeof *st;
	assert_ok(vhdx_faults_get_stats(x->f, st));
}

/* ---------------------------------------------------------------- err */

static void test_idle(void **state)
{
	struct fx *x = *state;
	uint8_t buf[4096];
	struct vhdx_faults_stats st;

	assert_int_equal(vhdx_io_get_fd(x->io), -1);
	assert_ok(vhdx_io_pread(x->io, buf, sizeof buf, 0, VHDX_TAG_HEADER));
	assert_memory_equal(buf, x->orig, sizeof buf);
	memset(buf, 0xee, sizeof buf);
	assert_ok(vhdx_io_pwrite(x->io, buf, sizeof buf, 8192, VHDX_TAG_LOG));
	assert_ok(vhdx_io_flush(x->io));
	stats(x, &st);
	assert_int_equal(st.calls, 0); /* no rules: the engine was never asked */
	assert_int_equal(st.events, 0);
}

static void test_err_only_matching_call(void **state)
{
	struct fx *x = *state;
	uint8_t buf[8];
	struct vhdx_faults_stats st;
	uint64_t m, h;
	char *ev;

	add(x, "op=read off=8192-12287 struct=bat err=EIO", 1);
	assert_ok(vhdx_io_pread(x->io, buf, 8, 8184, VHDX_TAG_BAT));        /* ends at 8191 */
	assert_ok(vhdx_io_pread(x->io, buf, 8, 12288, VHDX_TAG_BAT));       /* starts after */
	assert_ok(vhdx_io_pread(x->io, buf, 8, 8192, VHDX_TAG_METADATA));   /* another structure */
	assert_ok(vhdx_io_pwrite(x->io, buf, 8, 8192, VHDX_TAG_BAT));       /* a write */
	assert_fails(vhdx_io_pread(x->io, buf, 8, 8190, VHDX_TAG_BAT), -EIO,
		     "/imgs/disk.vhdx: reading BAT at offset 0x1ffe (8 bytes): injected EIO (fault rule 1)");
	assert_string_equal(vhdx_errmsg(),
			    "/imgs/disk.vhdx: reading BAT at offset 0x1ffe (8 bytes): injected EIO (fault rule 1)");
	assert_fails(vhdx_io_pread(x->io, buf, 8, 12280, VHDX_TAG_BAT), -EIO, "injected EIO (fault rule 1)");
	assert_ok(vhdx_faults_rule_hits(x->f, 1, &m, &h));
	assert_int_equal(m, 2);
	assert_int_equal(h, 2);
	stats(x, &st);
	assert_int_equal(st.calls, 6);
	assert_int_equal(st.events, 2);
	assert_int_equal(st.errors, 2);
	assert_int_equal(st.failed, 2);
	assert_int_equal(st.by_op[VHDX_FOP_READ], 2);
	assert_int_equal(st.by_op[VHDX_FOP_WRITE], 0);
	ev = events(x);
	/* drop the time field (t=...) before comparing */
	for (char *p = strstr(ev, " t="); p; p = strstr(p + 1, " t=")) {
		char *e = strchr(p + 1, ' ');
		memmove(p, e, strlen(e) + 1);
	}
	/* the successful reads came before the failures: neither failed range was read again */
	assert_string_equal(ev, "seq=1 rule=1 op=read file=/imgs/disk.vhdx off=0x1ffe len=8 voff=- struct=bat action=err errno=EIO reread=no\n"
				"seq=2 rule=1 op=read file=/imgs/disk.vhdx off=0x2ff8 len=8 voff=- struct=bat action=err errno=EIO reread=no\n");
	free(ev);
	/* the wrapper's own error counter saw both */
	assert_int_equal(atomic_load(&x->io->cnt.errors[VHDX_IO_READ]), 2);
}

/* events() without the time field (t=...), to compare whole lines */
static char *events_untimed(struct fx *x)
{
	char *ev = events(x);

	for (char *p = strstr(ev, " t="); p; p = strstr(p + 1, " t=")) {
		char *e = strchr(p + 1, ' ');
		memmove(p, e, strlen(e) + 1);
	}
	return ev;
}

/*
 * A failed read is marked reread=yes once a later successful read of the
 * same file overlaps its range (a kernel whose readahead failed reads the
 * page it needs again: the fault changed nothing), and stays reread=no
 * when nothing reads those bytes again: a read elsewhere, right next to
 * it, on another file, a bit-flipped read or a read that fails itself
 * does not count.  Issue #16: the cycle tells such faults apart.
 */
static void test_failed_read_reread(void **state)
{
	struct fx *x = *state;
	struct vhdx_io *m2, *io2;
	uint8_t buf[4096];
	char *ev;

	assert_ok(vhdx_io_mem_new(x->orig, FILE_LEN, "/imgs/other.vhdx", &m2));
	assert_ok(vhdx_io_fault_new(x->f, m2, &io2));
	add(x, "file=disk.vhdx op=read off=4096+4096 nth=1 err=EIO\n"
	       "file=disk.vhdx op=read off=20480+4096 nth=1 short=100 err=EIO\n"
	       "file=disk.vhdx op=read off=40960 flip=1\n"
	       "file=disk.vhdx op=write off=0+512 err=EIO", 4);
	assert_fails(vhdx_io_pread(x->io, buf, 4096, 4096, VHDX_TAG_PAYLOAD), -EIO, "injected EIO (fault rule 1");
	assert_fails(vhdx_io_pread(x->io, buf, 4096, 20480, VHDX_TAG_PAYLOAD), -EIO, "short read of 100");
	assert_fails(vhdx_io_pwrite(x->io, buf, 512, 0, VHDX_TAG_HEADER), -EIO, "injected EIO (fault rule 4)");
	ev = events_untimed(x);
	assert_string_equal(ev, "seq=1 rule=1 op=read file=/imgs/disk.vhdx off=0x1000 len=4096 voff=- struct=payload action=err errno=EIO reread=no\n"
				"seq=2 rule=2 op=read file=/imgs/disk.vhdx off=0x5000 len=4096 voff=- struct=payload action=short bytes=100 errno=EIO reread=no\n"
				"seq=3 rule=4 op=write file=/imgs/disk.vhdx off=0x0 len=512 voff=- struct=header action=err errno=EIO\n");
	free(ev);
	/* none of these reads the failed bytes again */
	assert_ok(vhdx_io_pread(x->io, buf, 4096, 0, VHDX_TAG_PAYLOAD));       /* ends right before 4096 */
	assert_ok(vhdx_io_pread(x->io, buf, 4096, 8192, VHDX_TAG_PAYLOAD));    /* starts right after */
	assert_ok(vhdx_io_pread(io2, buf, 4096, 4096, VHDX_TAG_PAYLOAD));      /* another file */
	assert_ok(vhdx_io_pread(io2, buf, 4096, 20480, VHDX_TAG_PAYLOAD));
	assert_ok(vhdx_io_pread(x->io, buf, 8, 40960 - 4, VHDX_TAG_PAYLOAD)); /* flipped: not a good read */
	ev = events_untimed(x);
	assert_non_null(strstr(ev, "seq=1 rule=1 op=read file=/imgs/disk.vhdx off=0x1000 len=4096 voff=- struct=payload action=err errno=EIO reread=no\n"));
	assert_non_null(strstr(ev, "action=short bytes=100 errno=EIO reread=no\n"));
	free(ev);
	/* a part of the first range read again (as a kernel reads the one page it needs): absorbed */
	assert_ok(vhdx_io_pread(x->io, buf, 512, 8191 - 511, VHDX_TAG_PAYLOAD));
	ev = events_untimed(x);
	assert_string_equal(ev, "seq=1 rule=1 op=read file=/imgs/disk.vhdx off=0x1000 len=4096 voff=- struct=payload action=err errno=EIO reread=yes\n"
				"seq=2 rule=2 op=read file=/imgs/disk.vhdx off=0x5000 len=4096 voff=- struct=payload action=short bytes=100 errno=EIO reread=no\n"
				"seq=3 rule=4 op=write file=/imgs/disk.vhdx off=0x0 len=512 voff=- struct=header action=err errno=EIO\n"
				"seq=4 rule=3 op=read file=/imgs/disk.vhdx off=0x9ffc len=8 voff=- struct=payload action=flip bits=9\n");
	free(ev);
	vhdx_io_close(io2);
}

static void test_nth_write_and_voff(void **state)
{
	struct fx *x = *state;
	uint8_t a[512], b[512], c[512];
	const uint8_t *d;

	memset(a, 0xa1, sizeof a);
	memset(b, 0xb2, sizeof b);
	memset(c, 0xc3, sizeof c);
	add(x, "op=write nth=2 err=ENOSPC\nop=read voff=1M+64K err=ETIMEDOUT", 2);
	assert_ok(vhdx_io_pwrite(x->io, a, 512, 0, VHDX_TAG_PAYLOAD));
	assert_fails(vhdx_io_pwrite(x->io, b, 512, 512, VHDX_TAG_PAYLOAD), -ENOSPC,
		     "writing payload at offset 0x200 (512 bytes): injected ENOSPC (fault rule 1)");
	assert_ok(vhdx_io_pwrite(x->io, c, 512, 1024, VHDX_TAG_PAYLOAD));
	d = file_bytes(x, FILE_LEN);
	assert_memory_equal(d, a, 512);
	assert_memory_equal(d + 512, x->orig + 512, 512); /* the failed write wrote nothing */
	assert_memory_equal(d + 1024, c, 512);

	/* voff: payload reads whose virtual range meets [1M, 1M+64K) */
	assert_ok(vhdx_io_pread_payload(x->io, a, 512, 0, 1048576 - 512));
	assert_fails(vhdx_io_pread_payload(x->io, a, 512, 4096, 1048576 - 511), -ETIMEDOUT,
		     "reading payload at offset 0x1000 (512 bytes): injected ETIMEDOUT (fault rule 2; virtual disk bytes 0xffe01-0x100000)");
	assert_fails(vhdx_io_pread_payload(x->io, a, 512, 0, 1048576 + 65535), -ETIMEDOUT, "");
	assert_ok(vhdx_io_pread_payload(x->io, a, 512, 0, 1048576 + 65536));
	assert_ok(vhdx_io_pread(x->io, a, 512, 0, VHDX_TAG_BAT)); /* metadata: no voff */
}

/* ---------------------------------------------------------------- short, torn */

static void test_short_read(void **state)
{
	struct fx *x = *state;
	uint8_t buf[4096];

	add(x, "op=read short=100", 1);
	memset(buf, 0xaa, sizeof buf);
	assert_fails(vhdx_io_pread(x->io, buf, sizeof buf, 4096, VHDX_TAG_LOG), -EIO,
		     "reading log at offset 0x1000 (4096 bytes): injected EIO after a short read of 100 of 4096 bytes (fault rule 1)");
	assert_memory_equal(buf, x->orig + 4096, 100);
	for (size_t i = 100; i < sizeof buf; i++)
		assert_int_equal(buf[i], 0xaa);
}

static void test_short_write(void **state)
{
	struct fx *x = *state;
	uint8_t buf[4096];
	const uint8_t *d;

	add(x, "op=write short=100 err=ENOSPC", 1);
	memset(buf, 0x55, sizeof buf);
	assert_fails(vhdx_io_pwrite(x->io, buf, sizeof buf, 4096, VHDX_TAG_PAYLOAD), -ENOSPC,
		     "injected ENOSPC after a short write of 100 of 4096 bytes (fault rule 1)");
	d = file_bytes(x, FILE_LEN);
	assert_memory_equal(d, x->orig, 4096);
	assert_memory_equal(d + 4096, buf, 100);
	assert_memory_equal(d + 4196, x->orig + 4196, FILE_LEN - 4196);
}

static void test_torn_write(void **state)
{
	struct fx *x = *state;
	uint8_t buf[4096];
	const uint8_t *d;
	uint8_t rbuf[16];

	add(x, "op=write torn=3", 1);
	memset(buf, 0x66, sizeof buf);
	assert_ok(vhdx_io_pread(x->io, rbuf, sizeof rbuf, 0, VHDX_TAG_HEADER)); /* reads untouched */
	assert_fails(vhdx_io_pwrite(x->io, buf, sizeof buf, 8192, VHDX_TAG_BITMAP), -EIO,
		     "writing sector bitmap at offset 0x2000 (4096 bytes): injected EIO after a torn write: 3 of 8 sectors persisted (fault rule 1)");
	d = file_bytes(x, FILE_LEN);
	assert_memory_equal(d, x->orig, 8192);
	assert_memory_equal(d + 8192, buf, 1536);
	assert_memory_equal(d + 8192 + 1536, x->orig + 8192 + 1536, FILE_LEN - 8192 - 1536);
}

/* ---------------------------------------------------------------- flip */

static unsigned differing_bits(const uint8_t *a, const uint8_t *b, size_t n)
{
	unsigned bits = 0;
	for (size_t i = 0; i < n; i++)
		bits += (unsigned)__builtin_popcount(a[i] ^ b[i]);
	return bits;
}

static void test_flip_read(void **state)
{
	struct fx *x = *state;
	uint8_t buf[8192], again[8192];
	char *ev;

	add(x, "op=read flip=3 seed=9 nth=1", 1);
	assert_ok(vhdx_io_pread(x->io, buf, sizeof buf, 0, VHDX_TAG_PAYLOAD)); /* succeeds: silent */
	assert_int_equal(differing_bits(buf, x->orig, sizeof buf), 3);
	assert_ok(vhdx_io_pread(x->io, again, sizeof again, 0, VHDX_TAG_PAYLOAD)); /* nth=1: only once */
	assert_memory_equal(again, x->orig, sizeof again);
	ev = events(x);
	assert_non_null(strstr(ev, "action=flip bits="));
	assert_null(strstr(ev, "errno="));
	free(ev);

	/* the same seed flips the same bits */
	{
		struct vhdx_faults *f2;
		struct vhdx_io *m2, *io2;
		uint8_t buf2[8192];
		assert_ok(vhdx_faults_new(&f2));
		assert_int_equal(vhdx_faults_add(f2, "op=read flip=3 seed=9 nth=1"), 1);
		assert_ok(vhdx_io_mem_new(x->orig, FILE_LEN, "other", &m2));
		assert_ok(vhdx_io_fault_new(f2, m2, &io2));
		assert_ok(vhdx_io_pread(io2, buf2, sizeof buf2, 0, VHDX_TAG_PAYLOAD));
		assert_memory_equal(buf2, buf, sizeof buf);
		vhdx_io_close(io2);
		vhdx_faults_free(f2);
	}
}

static void test_flip_write(void **state)
{
	struct fx *x = *state;
	uint8_t buf[4096], keep[4096];
	const uint8_t *d;

	add(x, "op=write flip=1", 1);
	memset(buf, 0x3c, sizeof buf);
	memcpy(keep, buf, sizeof buf);
	assert_ok(vhdx_io_pwrite(x->io, buf, sizeof buf, 4096, VHDX_TAG_PAYLOAD));
	assert_memory_equal(buf, keep, sizeof buf); /* the caller's buffer is not touched */
	d = file_bytes(x, FILE_LEN);
	assert_int_equal(differing_bits(d + 4096, buf, sizeof buf), 1);
	assert_memory_equal(d, x->orig, 4096);
}

/* ---------------------------------------------------------------- delay */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_delay(void **state)
{
	struct fx *x = *state;
	uint8_t buf[512];
	double t0, t1;
	char *ev;

	add(x, "op=flush delay=60\nop=read nth=2 delay=40", 2);
	t0 = now_s();
	assert_ok(vhdx_io_pwrite(x->io, buf, 1, 0, VHDX_TAG_LOG)); /* no delay rule for writes */
	assert_ok(vhdx_io_flush(x->io));
	t1 = now_s();
	assert_true(t1 - t0 >= 0.060);
	t0 = now_s();
	assert_ok(vhdx_io_pread(x->io, buf, sizeof buf, 0, VHDX_TAG_HEADER));
	assert_ok(vhdx_io_pread(x->io, buf, sizeof buf, 0, VHDX_TAG_HEADER));
	assert_true(now_s() - t0 >= 0.040);
	ev = events(x);
	assert_non_null(strstr(ev, "rule=1 op=flush file=/imgs/disk.vhdx off=- len=0 voff=- struct=- action=delay ms=60\n"));
	assert_non_null(strstr(ev, "rule=2 op=read file=/imgs/disk.vhdx off=0x0 len=512 voff=- struct=header action=delay ms=40\n"));
	free(ev);
}

/* ---------------------------------------------------------------- crash */

static void test_crash(void **state)
{
	struct fx *x = *state;
	uint8_t w1[4096], w2[4096], w3[4096], w4[512], buf[512];
	const uint8_t *d;
	struct vhdx_faults_stats st;
	char *ev;

	memset(w1, 0x11, sizeof w1);
	memset(w2, 0x22, sizeof w2);
	memset(w3, 0x33, sizeof w3);
	memset(w4, 0x44, sizeof w4);
	add(x, "op=write nth=4 crash", 1);
	assert_ok(vhdx_io_pwrite(x->io, w1, sizeof w1, 0, VHDX_TAG_HEADER)); /* 1: flushed below */
	assert_ok(vhdx_io_flush(x->io));
	assert_int_equal(vhdx_io_fault_pending(x->io), 0);
	assert_ok(vhdx_io_pwrite(x->io, w2, sizeof w2, 8192, VHDX_TAG_LOG));          /* 2 */
	assert_ok(vhdx_io_pwrite(x->io, w3, sizeof w3, FILE_LEN, VHDX_TAG_PAYLOAD));  /* 3: grows to 68K */
	assert_ok(vhdx_io_set_size(x->io, 32768));                                   /* then shrinks to 32K */
	assert_int_equal(vhdx_io_fault_pending(x->io), 3);
	d = file_bytes(x, 32768);
	assert_memory_equal(d + 8192, w2, sizeof w2);
	/* write 4 is the power cut: it is not done, and the three changes since the flush are undone */
	assert_fails(vhdx_io_pwrite(x->io, w4, sizeof w4, 0, VHDX_TAG_HEADER), -EIO,
		     "writing header at offset 0x0 (512 bytes): injected crash (fault rule 1): power cut, 3 unflushed writes dropped (EIO)");
	d = file_bytes(x, FILE_LEN);
	assert_memory_equal(d, w1, sizeof w1);                          /* flushed: kept */
	assert_memory_equal(d + 4096, x->orig + 4096, FILE_LEN - 4096); /* the rest as flushed */
	/* dead from now on */
	assert_fails(vhdx_io_pread(x->io, buf, sizeof buf, 0, VHDX_TAG_HEADER), -EIO,
		     "the disk is gone after the injected crash of fault rule 1");
	assert_fails(vhdx_io_flush(x->io), -EIO, "injected crash of fault rule 1");
	assert_fails(vhdx_io_pwrite(x->io, w4, sizeof w4, 0, VHDX_TAG_HEADER), -EIO, "");
	d = file_bytes(x, FILE_LEN);
	assert_memory_equal(d, w1, sizeof w1);
	stats(x, &st);
	assert_int_equal(st.crashes, 1);
	assert_int_equal(st.after_crash, 3);
	assert_int_equal(st.failed, 4);
	ev = events(x);
	assert_non_null(strstr(ev, "seq=1 "));
	assert_non_null(strstr(ev, "op=write file=/imgs/disk.vhdx off=0x0 len=512 voff=- struct=header action=crash errno=EIO\n"));
	assert_non_null(strstr(ev, "op=flush file=/imgs/disk.vhdx off=- len=0 voff=- struct=- action=after-crash crashed-by=1 errno=EIO\n"));
	free(ev);
}

static void test_crash_torn(void **state)
{
	struct fx *x = *state;
	uint8_t w1[4096], w2[4096];
	const uint8_t *d;

	memset(w1, 0x11, sizeof w1);
	memset(w2, 0x22, sizeof w2);
	add(x, "op=write nth=2 torn=1 crash", 1);
	assert_ok(vhdx_io_pwrite(x->io, w1, sizeof w1, 0, VHDX_TAG_LOG));
	assert_fails(vhdx_io_pwrite(x->io, w2, sizeof w2, 8192, VHDX_TAG_LOG), -EIO,
		     "injected crash (fault rule 1): power cut, 1 unflushed writes dropped, 512 of 4096 bytes of this write persisted (EIO)");
	d = file_bytes(x, FILE_LEN);
	assert_memory_equal(d, x->orig, 8192);               /* the unflushed write 1 is gone */
	assert_memory_equal(d + 8192, w2, 512);              /* the torn sector made it */
	assert_memory_equal(d + 8192 + 512, x->orig + 8192 + 512, FILE_LEN - 8192 - 512);
}

/* A power cut on one file of an engine hits every file of it. */
static void test_crash_other_file(void **state)
{
	struct fx *x = *state;
	struct vhdx_io *m2, *io2;
	uint8_t b[4096], buf[16];
	size_t len;
	const uint8_t *d;

	memset(b, 0x77, sizeof b);
	add(x, "file=disk.vhdx op=flush crash", 1);
	assert_ok(vhdx_io_mem_new(x->orig, 8192, "/imgs/parent.vhdx", &m2));
	assert_ok(vhdx_io_fault_new(x->f, m2, &io2));
	assert_ok(vhdx_io_pwrite(io2, b, sizeof b, 4096, VHDX_TAG_PAYLOAD));      /* unflushed on file 2 */
	assert_ok(vhdx_io_pwrite(io2, b, sizeof b, 8192, VHDX_TAG_PAYLOAD));      /* grows file 2 */
	assert_ok(vhdx_io_pwrite(x->io, b, sizeof b, 0, VHDX_TAG_PAYLOAD));       /* unflushed on file 1 */
	assert_fails(vhdx_io_flush(x->io), -EIO, "injected crash (fault rule 1): power cut, 1 unflushed writes dropped");
	d = vhdx_io_mem_data(x->mem, &len);
	assert_memory_equal(d, x->orig, FILE_LEN);
	/* file 2 learns of the crash on its next call */
	assert_fails(vhdx_io_pread(io2, buf, sizeof buf, 0, VHDX_TAG_PAYLOAD), -EIO, "injected crash of fault rule 1");
	d = vhdx_io_mem_data(m2, &len);
	assert_int_equal(len, 8192);
	assert_memory_equal(d, x->orig, 8192);
	vhdx_io_close(io2);

	/* a file opened after the crash works */
	assert_ok(vhdx_io_mem_new(x->orig, 8192, "/imgs/new.vhdx", &m2));
	assert_ok(vhdx_io_fault_new(x->f, m2, &io2));
	assert_ok(vhdx_io_pread(io2, buf, sizeof buf, 0, VHDX_TAG_PAYLOAD));
	vhdx_io_close(io2);
}

static char tmpdir[64];

/* A file closed without another call still gets its unflushed writes undone (a real file, read back after). */
static void test_crash_undo_at_close(void **state)
{
	struct fx *x = *state;
	struct vhdx_io *fio, *io2;
	uint8_t b[4096], back[8192];
	char path[128];
	FILE *fp;

	snprintf(path, sizeof path, "%s/undo.bin", tmpdir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(x->orig, 1, 8192, fp), 8192);
	fclose(fp);
	memset(b, 0x5a, sizeof b);
	add(x, "file=disk.vhdx op=flush crash", 1);
	assert_ok(vhdx_io_file_open(path, true, &fio));
	assert_ok(vhdx_io_fault_new(x->f, fio, &io2));
	assert_ok(vhdx_io_pwrite(io2, b, sizeof b, 4096, VHDX_TAG_PAYLOAD));
	assert_ok(vhdx_io_pwrite(io2, b, sizeof b, 8192, VHDX_TAG_PAYLOAD)); /* grows the file to 12K */
	assert_int_equal(vhdx_io_fault_pending(io2), 2);
	assert_fails(vhdx_io_flush(x->io), -EIO, ""); /* the crash, on the other file */
	vhdx_io_close(io2);                              /* no call in between: undone at close */
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_int_equal(fread(back, 1, sizeof back, fp), 8192);
	assert_int_equal(fgetc(fp), EOF); /* 8 KiB again */
	fclose(fp);
	assert_memory_equal(back, x->orig, 8192);
	unlink(path);
}

static void test_crash_limit(void **state)
{
	struct fx *x = *state;
	uint8_t b[4096], buf[16];
	char *ev;

	memset(b, 0x99, sizeof b);
	vhdx_faults_set_crash_limit(x->f, 8192);
	add(x, "op=flush crash once", 1);
	assert_ok(vhdx_io_pwrite(x->io, b, sizeof b, 0, VHDX_TAG_PAYLOAD));
	assert_ok(vhdx_io_pwrite(x->io, b, sizeof b, 4096, VHDX_TAG_PAYLOAD));
	assert_int_equal(vhdx_io_fault_pending(x->io), 2);
	assert_ok(vhdx_io_pwrite(x->io, b, sizeof b, 8192, VHDX_TAG_PAYLOAD)); /* 12 KiB > 8 KiB */
	assert_int_equal(vhdx_io_fault_pending(x->io), 0);
	assert_fails(vhdx_io_flush(x->io), -ENOMEM,
		     "flush: injected crash (fault rule 1) cannot be simulated: the unflushed writes since the last flush exceed the crash limit of 8192 bytes of pre-images");
	/* nothing died: the io goes on, and a flush re-arms the tracking */
	assert_ok(vhdx_io_pread(x->io, buf, sizeof buf, 0, VHDX_TAG_PAYLOAD));
	assert_ok(vhdx_io_flush(x->io)); /* once: the rule is spent */
	assert_ok(vhdx_io_pwrite(x->io, b, 100, 0, VHDX_TAG_PAYLOAD));
	assert_int_equal(vhdx_io_fault_pending(x->io), 1);
	ev = events(x);
	assert_non_null(strstr(ev, "action=crash-unavailable pre-image limit exceeded errno=ENOMEM\n"));
	free(ev);
}

/* ---------------------------------------------------------------- events, callback, threads */

struct cb_log {
	unsigned n;
	char last[512];
};

static void on_event(const struct vhdx_fault_event *ev, void *arg)
{
	struct cb_log *l = arg;

	l->n++;
	snprintf(l->last, sizeof l->last, "%llu %u [%s] %s %s %llx %llu %llx %s %s %d", (unsigned long long)ev->seq,
		 ev->rule, ev->rule_text, ev->op, ev->file, (unsigned long long)ev->foff, (unsigned long long)ev->len,
		 (unsigned long long)ev->voff, ev->structure, ev->action, ev->error);
}

static void test_events_ring_and_callback(void **state)
{
	struct fx *x = *state;
	struct cb_log log = { 0 };
	uint8_t buf[512];
	struct vhdx_faults_stats st;
	char *t;
	uint64_t next;

	vhdx_faults_set_event_limit(x->f, 3);
	vhdx_faults_set_callback(x->f, on_event, &log);
	add(x, "op=read struct=payload err=EBADMSG", 1);
	for (int i = 0; i < 5; i++)
		assert_fails(vhdx_io_pread_payload(x->io, buf, 512, 0x1000u * (unsigned)i, 0x200000u + (unsigned)i), -EBADMSG, "");
	assert_int_equal(log.n, 5);
	assert_string_equal(log.last, "5 1 [op=read struct=payload err=EBADMSG] read /imgs/disk.vhdx 4000 512 200004 payload err 74");
	stats(x, &st);
	assert_int_equal(st.events, 5);
	assert_int_equal(st.events_kept, 3);
	assert_ok(vhdx_faults_format_events(x->f, 0, &t, &next));
	assert_int_equal(next, 5);
	assert_null(strstr(t, "seq=2 "));
	assert_non_null(strstr(t, "seq=3 "));
	assert_non_null(strstr(t, "voff=0x200004 struct=payload action=err errno=EBADMSG reread=no\n"));
	free(t);
	assert_ok(vhdx_faults_format_events(x->f, 4, &t, &next));
	assert_int_equal(next, 5);
	assert_non_null(strstr(t, "seq=5 "));
	assert_null(strstr(t, "seq=4 "));
	free(t);
	assert_ok(vhdx_faults_format_events(x->f, 5, &t, &next));
	assert_string_equal(t, "");
	assert_int_equal(next, 5);
	free(t);
	vhdx_faults_clear_events(x->f);
	stats(x, &st);
	assert_int_equal(st.events_kept, 0);
	assert_int_equal(st.events, 5);
	vhdx_faults_set_callback(x->f, NULL, NULL);
	/* clear: every call passes again */
	vhdx_faults_clear(x->f);
	assert_ok(vhdx_io_pread_payload(x->io, buf, 512, 0, 0));
	assert_int_equal(log.n, 5);
}

struct reader {
	struct fx *x;
	atomic_int stop;
	atomic_uint ok, failed, wrong;
};

static void *read_loop(void *arg)
{
	struct reader *r = arg;
	uint8_t buf[1024];

	while (!r->stop) {
		int ret = vhdx_io_pread(r->x->io, buf, sizeof buf, 2048, VHDX_TAG_PAYLOAD);
		if (ret == 0) {
			r->ok++;
			if (memcmp(buf, r->x->orig + 2048, sizeof buf) != 0)
				r->wrong++;
		} else if (ret == -EIO && strstr(vhdx_errmsg(), "injected EIO")) {
			r->failed++;
		} else {
			r->wrong++;
		}
	}
	return NULL;
}

/* Rules added and cleared while other threads read: every read either succeeds with the right bytes or fails as injected. */
static void test_rules_change_under_io(void **state)
{
	struct fx *x = *state;
	struct reader r[3] = { { .x = x }, { .x = x }, { .x = x } };
	pthread_t th[3];
	char *t;

	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, read_loop, &r[i]);
	for (int i = 0; i < 300; i++) {
		add(x, "op=read err=EIO\nop=write err=EIO", 2);
		usleep(100);
		vhdx_faults_clear(x->f);
		assert_ok(vhdx_faults_format_rules(x->f, &t));
		free(t);
		usleep(100);
	}
	/* no rules now: every reader must get through (within 5 s however slow the machine) */
	for (int i = 0; i < 3; i++)
		for (int ms = 0; ms < 5000 && !r[i].ok; ms++)
			usleep(1000);
	for (int i = 0; i < 3; i++) {
		r[i].stop = 1;
		pthread_join(th[i], NULL);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].wrong, 0);
		assert_true(r[i].ok > 0);
	}
}

/* ---------------------------------------------------------------- whole images */

static char *img_path(const char *name)
{
	static char p[128];
	snprintf(p, sizeof p, "%s/%s", tmpdir, name);
	return p;
}

static void make_image(const char *path)
{
	struct vhdx_create_options co;
	struct vhdx_image *img;
	uint8_t buf[65536];

	vhdx_create_options_init(&co);
	co.virtual_size = 8u << 20;
	co.block_size = 1u << 20;
	co.flags = VHDX_CREATE_OVERWRITE;
	assert_ok(vhdx_create(path, &co));
	struct vhdx_open_options oo;
	vhdx_open_options_init(&oo);
	oo.flags = VHDX_OPEN_RDWR;
	assert_ok(vhdx_open(path, &oo, &img));
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = pattern(i);
	assert_int_equal(vhdx_pwrite(img, buf, sizeof buf, 1u << 20), (ssize_t)sizeof buf);
	assert_ok(vhdx_flush(img));
	assert_ok(vhdx_close(img));
}

static int open_with(const char *path, const char *rules, unsigned flags, struct vhdx_faults **fout,
		     struct vhdx_image **img)
{
	struct vhdx_open_options oo;
	struct vhdx_faults *f;
	int ret;

	assert_ok(vhdx_faults_new(&f));
	if (vhdx_faults_add(f, rules) < 0)
		fail_msg("rules '%s': %s", rules, vhdx_errmsg());
	vhdx_open_options_init(&oo);
	oo.flags = flags;
	oo.faults = f;
	*img = NULL;
	ret = vhdx_open(path, &oo, img);
	*fout = f;
	return ret;
}

static void test_image_open_close_bat(void **state)
{
	struct vhdx_faults *f;
	struct vhdx_image *img;
	char *path = img_path("a.vhdx");
	uint8_t buf[4096];
	char msg[256];
	(void)state;

	make_image(path);
	assert_fails(open_with(path, "op=open file=a.vhdx err=EACCES", 0, &f, &img), -EACCES, "");
	snprintf(msg, sizeof msg, "%s: opening: injected EACCES (fault rule 1)", path);
	assert_string_equal(vhdx_errmsg(), msg);
	vhdx_faults_free(f);

	assert_fails(open_with(path, "op=read struct=bat err=EIO", 0, &f, &img), -EIO, "reading BAT at offset 0x");
	assert_errmsg_contains("injected EIO (fault rule 1)");
	vhdx_faults_free(f);

	assert_ok(open_with(path, "op=close err=ENOSPC", VHDX_OPEN_RDWR, &f, &img));
	assert_int_equal(vhdx_layer_fd(img, 0), -1); /* no zero-copy around the rules */
	assert_int_equal(vhdx_pread(img, buf, sizeof buf, 1u << 20), (ssize_t)sizeof buf);
	vhdx_faults_free(f); /* the image keeps its own reference */
	vhdx_err_clear();
	assert_int_equal(vhdx_close(img), -ENOSPC);
	assert_errmsg_contains("closing: injected ENOSPC (fault rule 1)");

	/* a payload read fault reaches vhdx_pread with the virtual range in the message */
	assert_ok(open_with(path, "op=read voff=1M+4K err=EIO", 0, &f, &img));
	vhdx_err_clear();
	assert_int_equal(vhdx_pread(img, buf, sizeof buf, (1u << 20) + 4096), (ssize_t)sizeof buf);
	assert_int_equal(vhdx_pread(img, buf, sizeof buf, (1u << 20) + 2048), -EIO);
	assert_errmsg_contains("reading payload at offset 0x");
	assert_errmsg_contains("injected EIO (fault rule 1; virtual disk bytes 0x100800-0x1017ff)");
	assert_ok(vhdx_close(img));
	vhdx_faults_free(f);
}

/*
 * Log write faults under a new block's BAT update (which reaches the file only
 * through the journal, at flush).  A log that always fails: the flush and the
 * close fail, and the image reopens with the old data.  Only the first log
 * write failing: the flush fails, the close commits the update again, and
 * the write is there whole (never a part of it); either way the flushed data
 * is intact.
 */
static void test_image_write_log_fault(void **state)
{
	struct vhdx_faults *f;
	struct vhdx_image *img;
	char *path = img_path("b.vhdx");
	static uint8_t buf[3u << 20], want[65536], neww[3u << 20];
	const char *rules[] = { "op=write struct=log err=EIO", "op=write struct=log nth=1 err=EIO" };
	(void)state;

	for (size_t i = 0; i < sizeof want; i++)
		want[i] = pattern(i);
	for (size_t i = 0; i < sizeof neww; i++)
		neww[i] = (uint8_t)(0xcd ^ (i >> 9));
	for (int k = 0; k < 2; k++) {
		uint64_t hits;
		make_image(path);
		assert_ok(open_with(path, rules[k], VHDX_OPEN_RDWR, &f, &img));
		/* 3 MiB at 3 MiB: three new blocks, three BAT entries through the log */
		assert_int_equal(vhdx_pwrite(img, neww, sizeof neww, 3u << 20), (ssize_t)sizeof neww);
		vhdx_err_clear();
		assert_int_equal(vhdx_flush(img), -EIO);
		assert_errmsg_contains("writing log at offset 0x");
		assert_errmsg_contains("injected EIO (fault rule 1)");
		if (k == 0)
			assert_int_equal(vhdx_close(img), -EIO); /* the last flush fails too */
		else
			assert_ok(vhdx_close(img));
		assert_ok(vhdx_faults_rule_hits(f, 1, NULL, &hits));
		assert_true(k == 0 ? hits >= 2 : hits == 1);
		vhdx_faults_free(f);

		assert_ok(vhdx_open(path, NULL, &img));
		assert_int_equal(vhdx_pread(img, buf, sizeof want, 1u << 20), (ssize_t)sizeof want);
		assert_memory_equal(buf, want, sizeof want); /* flushed before: intact */
		assert_int_equal(vhdx_pread(img, buf, sizeof neww, 3u << 20), (ssize_t)sizeof neww);
		if (k == 0) {
			for (size_t i = 0; i < sizeof neww; i++)
				if (buf[i] != 0)
					fail_msg("log always failing: byte %zu of the write's range is 0x%02x, not the old 0", i, buf[i]);
		} else if (memcmp(buf, neww, sizeof neww) != 0) {
			fail_msg("first log write failing, then the close committing: the write is not there whole");
		}
		assert_ok(vhdx_close(img));
	}
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/vhdx-fault-io-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return unit_tmpdir_remove(tmpdir);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

UNIT_MAIN(group_setup, group_teardown,
	  T(test_idle),
	  T(test_err_only_matching_call),
	  T(test_failed_read_reread),
	  T(test_nth_write_and_voff),
	  T(test_short_read),
	  T(test_short_write),
	  T(test_torn_write),
	  T(test_flip_read),
	  T(test_flip_write),
	  T(test_delay),
	  T(test_crash),
	  T(test_crash_torn),
	  T(test_crash_other_file),
	  T(test_crash_undo_at_close),
	  T(test_crash_limit),
	  T(test_events_ring_and_callback),
	  T(test_rules_change_under_io),
	  cmocka_unit_test(test_image_open_close_bat),
	  cmocka_unit_test(test_image_write_log_fault))
