/*
 * make_seeds.c - writes the seed corpora of fuzz/corpus/ (run by hand, the
 * result is committed; see fuzz/README).  It replaced make_seeds.py: the
 * seeds that wrote are written byte for byte the same, and fuzz/README says
 * which were added.
 *
 *   fuzz/make_seeds [--conf DIR] [--gen DIR] CORPUS
 *   fuzz/make_seeds --expand SEED IMAGE
 *
 * Image seeds are written in the compact "sparse" form of fuzz/image.c: the
 * non-zero 4 KiB pages of an image (up to a byte budget, the structures an
 * open needs first, so a 10 GiB image becomes a few KiB), with the
 * checksum-fixing flags set so that mutations keep passing the CRCs.
 * Sources: the conformance images (--conf, decompressed, e.g. /tmp/conf),
 * images made by qemu-img and by `vhdx create` / `vhdx write` (--gen, a
 * folder of ready images), and (always) images of the test-image generator,
 * hand-made locator items, VHD dynamic headers and fault rules.  Built on
 * the generator (tests/lib/vhdx_gen.h, which encodes with the library, and
 * its library-free half gen_bytes.h): the seeds are made without the
 * library's parsers.  --expand writes the image a sparse seed describes;
 * made into seeds again, the lib-* and qemu-* images give the committed
 * seeds (tests/test-fuzz-replay.sh checks it).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/gen_bytes.h"
#include "lib/vhdx_gen.h"

#define PAGE 4096u
#define KiB 1024u
#define MAX_NEED 80 /* 2 fixed ranges, 64 regions or 1 + 1 + 8 VHD ones, 2 logs */

/* The flags byte of a sparse input (fuzz/fuzz.h FUZZ_FIX_*, FUZZ_WRITE). */
enum { FIX_VHDX = 1, FIX_LOG = 2, FIX_VHD = 4, WRITE = 8 };

static const char *corpus;

static void die(const char *what, const char *path)
{
	fprintf(stderr, "make_seeds: %s: %s\n", path, what);
	exit(1);
}

/* Writes CORPUS/TARGET/NAME (the folder made if needed). */
static void out(const char *target, const char *name, const uint8_t *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", corpus, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(strerror(errno), path);
	snprintf(path, sizeof path, "%s/%s/%s", corpus, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		die(strerror(errno), path);
}

/* The whole file PATH, newly allocated, its length in *LEN. */
static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *b;

	if (!f || fstat(fileno(f), &st) < 0)
		die(strerror(errno), path);
	*len = (size_t)st.st_size;
	b = malloc(*len ? *len : 1);
	if (!b || fread(b, 1, *len, f) != *len)
		die("cannot read", path);
	fclose(f);
	return b;
}

/* ------------------------------------------------------------ image seeds */
struct range {
	uint64_t start, len;
};

struct ranges {
	struct range r[MAX_NEED];
	size_t n;
};

static void need(struct ranges *rs, uint64_t start, uint64_t len)
{
	if (rs->n < MAX_NEED)
		rs->r[rs->n++] = (struct range){ start, len };
}

/* The last page of a file of SIZE bytes (the whole file when it is shorter). */
static void need_tail(struct ranges *rs, uint64_t size)
{
	if (size >= PAGE)
		need(rs, size - PAGE, PAGE);
	else
		need(rs, 0, size);
}

/*
 * What a VHDX open needs: file identifier, headers and region tables,
 * every region (metadata, BAT) of the first region table with a signature,
 * and in LOGS the logs the headers point to.
 */
static void vhdx_ranges(const uint8_t *b, uint64_t size, struct ranges *rs, struct ranges *logs)
{
	need(rs, 0, 320 * KiB);
	need_tail(rs, size);
	for (uint64_t hoff = 64 * KiB; hoff <= 128 * KiB; hoff += 64 * KiB)
		if (hoff + 80 <= size && !memcmp(b + hoff, "head", 4))
			need(logs, gen_get_le64(b + hoff + 72), gen_get_le32(b + hoff + 68));
	for (uint64_t roff = 192 * KiB; roff <= 256 * KiB; roff += 64 * KiB) {
		uint32_t n;
		if (roff + 64 * KiB > size || memcmp(b + roff, "regi", 4))
			continue;
		n = gen_get_le32(b + roff + 8);
		for (uint32_t k = 0; k < n && k < 64; k++) {
			const uint8_t *e = b + roff + 16 + 32 * k + 16;
			need(rs, gen_get_le64(e), gen_get_le32(e + 8));
		}
		break;
	}
}

/* What a VHD open needs: footer and its copy, dynamic header, BAT, locator data. */
static void vhd_ranges(const uint8_t *b, uint64_t size, struct ranges *rs)
{
	const uint8_t *f = b + size - 512;
	uint64_t doff;

	need(rs, 0, 512);
	need_tail(rs, size);
	if (size < 512 || memcmp(f, "conectix", 8))
		return;
	doff = gen_get_be64(f + 16);
	if (doff >= size || doff + 1024 > size || memcmp(b + doff, "cxsparse", 8))
		return;
	need(rs, doff, 1024);
	/* the BAT: Max Table Entries at 28 (make_seeds.py read the version at 24, 0x10000 entries) */
	need(rs, gen_get_be64(b + doff + 16), 4ull * gen_get_be32(b + doff + 28));
	for (int k = 0; k < 8; k++) {
		const uint8_t *e = b + doff + 576 + 24 * k;
		if (gen_get_be32(e))
			need(rs, gen_get_be64(e + 16), gen_get_be32(e + 8));
	}
}

/* Length of the page at OFF of a SIZE-byte file that is not all zero, or 0. */
static size_t page_len(const uint8_t *b, uint64_t size, uint64_t off)
{
	size_t n = size - off < PAGE ? (size_t)(size - off) : PAGE;

	for (size_t i = 0; i < n; i++)
		if (b[off + i])
			return n;
	return 0;
}

struct seed_opts {
	uint8_t flags, choice;
	size_t budget;
	bool with_log; /* the logs the headers point to are needed too */
	bool fill;     /* further non-zero pages in file order while the budget lasts */
};

/*
 * The sparse form of image B (SIZE bytes) into SEED: every non-zero page of
 * the ranges the open needs (false when they do not fit in the budget), then
 * further non-zero pages; runs of pages become one record.
 */
static bool sparse(const uint8_t *b, uint64_t size, const struct seed_opts *o, struct gen_seed *seed)
{
	uint64_t pages = (size + PAGE - 1) / PAGE, used = 0;
	struct ranges rs = { .n = 0 }, logs = { .n = 0 };
	bool *chosen = calloc(pages ? pages : 1, sizeof *chosen);

	if (!chosen)
		die("out of memory", "sparse");
	if (size >= 8 && !memcmp(b, "vhdxfile", 8))
		vhdx_ranges(b, size, &rs, &logs);
	else
		vhd_ranges(b, size, &rs);
	for (size_t i = 0; o->with_log && i < logs.n; i++)
		need(&rs, logs.r[i].start, logs.r[i].len);
	for (size_t i = 0; i < rs.n; i++) {
		uint64_t end = rs.r[i].start + rs.r[i].len < rs.r[i].start ? UINT64_MAX : rs.r[i].start + rs.r[i].len;
		for (uint64_t off = rs.r[i].start / PAGE * PAGE; off < end && off < size; off += PAGE) {
			size_t n = page_len(b, size, off);
			if (n && !chosen[off / PAGE])
				chosen[off / PAGE] = true, used += n;
		}
	}
	if (used > o->budget) {
		free(chosen);
		return false;
	}
	for (uint64_t p = 0; o->fill && p < pages; p++) {
		size_t n = page_len(b, size, p * PAGE);
		if (!n)
			continue;
		if (used + PAGE > o->budget)
			break;
		if (!chosen[p])
			chosen[p] = true, used += n;
	}
	if (gen_seed_begin(seed, o->flags, o->choice, size) < 0)
		die("out of memory", "sparse");
	for (uint64_t p = 0; p < pages; p++)
		if (chosen[p] && gen_seed_add(seed, p * PAGE, b + p * PAGE, page_len(b, size, p * PAGE)) < 0)
			die("out of memory", "sparse");
	free(chosen);
	return true;
}

/* Writes the sparse seed of B as TARGET/NAME, or says that it does not fit. */
static void put(const char *target, const char *name, const uint8_t *b, uint64_t size, const struct seed_opts *o)
{
	struct gen_seed seed;

	if (!sparse(b, size, o, &seed)) {
		fprintf(stderr, "%s: %s does not fit the budget, left out\n", target, name);
		return;
	}
	out(target, name, seed.data, seed.len);
	gen_seed_free(&seed);
}

static bool starts_with_any(const char *s, const char *const *prefixes)
{
	for (; *prefixes; prefixes++)
		if (!strncmp(s, *prefixes, strlen(*prefixes)))
			return true;
	return false;
}

/*
 * The raw inputs of fuzz_vhdx_log that it decodes as one log entry: the
 * first two entries of the log header 1 points to, each as
 * entry-NAME-OFFSET (its offset in the log).
 */
static void entry_seeds(const char *name, const uint8_t *b, uint64_t size)
{
	uint64_t log_off, log_len, at = 0;
	char ename[1024];

	if (size < 64 * KiB + 80 || memcmp(b + 64 * KiB, "head", 4))
		return;
	log_len = gen_get_le32(b + 64 * KiB + 68);
	log_off = gen_get_le64(b + 64 * KiB + 72);
	if (log_off > size || log_len > size - log_off)
		return;
	for (int k = 0; k < 2 && at + 16 <= log_len; k++) {
		const uint8_t *e = b + log_off + at;
		uint32_t elen = gen_get_le32(e + 8);
		if (memcmp(e, "loge", 4) || !elen || elen % PAGE || elen > log_len - at)
			break;
		snprintf(ename, sizeof ename, "entry-%s-%llu", name, (unsigned long long)at);
		out("fuzz_vhdx_log", ename, e, elen);
		at += elen;
	}
}

static void image_seed(const char *path, const char *name)
{
	static const char *const vhdx_writes[] = { "lib-", "qemu-", "dirtylog", NULL };
	static const char *const vhd_writes[] = { "lib-", "qemu-", "badsum", NULL };
	size_t size;
	uint8_t *b = slurp(path, &size);
	char wname[1024];

	snprintf(wname, sizeof wname, "%s-write", name);
	if (size >= 8 && !memcmp(b, "vhdxfile", 8)) {
		put("fuzz_vhdx_open", name, b, size, &(struct seed_opts){ FIX_VHDX | FIX_LOG, 0, 128 * KiB, false, true });
		if (starts_with_any(name, vhdx_writes))
			put("fuzz_vhdx_open", wname, b, size,
			    &(struct seed_opts){ FIX_VHDX | FIX_LOG | WRITE, 0x21, 128 * KiB, false, true });
		if (strstr(name, "log")) {
			put("fuzz_vhdx_log", name, b, size,
			    &(struct seed_opts){ FIX_VHDX | FIX_LOG, 0, 1200 * KiB, true, false });
			entry_seeds(name, b, size);
		}
	} else {
		put("fuzz_vhd_open", name, b, size, &(struct seed_opts){ FIX_VHD, 0, 128 * KiB, false, true });
		if (starts_with_any(name, vhd_writes))
			put("fuzz_vhd_open", wname, b, size,
			    &(struct seed_opts){ FIX_VHD | WRITE, 0x21, 128 * KiB, false, true });
		if (size <= 128 * KiB) {
			snprintf(wname, sizeof wname, "raw-%s", name);
			out("fuzz_vhd_open", wname, b, size);
		}
	}
	free(b);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file of DIR (only the image suffixes when IMAGES_ONLY), in name order. */
static void image_seeds(const char *dir, bool images_only)
{
	static const char *const suffixes[] = { ".vhdx", ".avhdx", ".vhd" };
	char **names = NULL, path[4096];
	size_t n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		die(strerror(errno), dir);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		bool keep = !images_only && strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
		for (size_t i = 0; images_only && i < 3; i++)
			keep |= len >= strlen(suffixes[i]) && !strcmp(e->d_name + len - strlen(suffixes[i]), suffixes[i]);
		if (!keep)
			continue;
		names = realloc(names, (n + 1) * sizeof *names);
		if (!names || !(names[n++] = strdup(e->d_name)))
			die("out of memory", dir);
	}
	closedir(d);
	qsort(names, n, sizeof *names, by_name);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		image_seed(path, names[i]);
		free(names[i]);
	}
	free(names);
}

/* ------------------------------------------------------------ locator seeds */
static void vhdx_locator_seed(const char *name, const struct gen_kv *pairs, size_t n)
{
	uint8_t item[4096];

	out("fuzz_locator", name, item, gen_vhdx_locator(pairs, n, item, sizeof item));
}

static void vhd_dynhdr_seed(const char *name, const struct gen_vhd_loc *locs, size_t n)
{
	uint8_t h[8192];

	out("fuzz_locator", name, h, gen_vhd_dynhdr(locs, n, "parent.vhd", h, sizeof h));
}

static void hand_made_locator_seeds(void)
{
	static const char link[] = "{0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0}";
	uint8_t ru[64], ku[64];

	vhdx_locator_seed("vhdx-relative", (struct gen_kv[]){ { "parent_linkage", link },
							     { "relative_path", ".\\base.vhdx" } }, 2);
	vhdx_locator_seed("vhdx-all-paths", (struct gen_kv[]){
		{ "parent_linkage", link },
		{ "parent_linkage2", "{0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0}" },
		{ "relative_path", "..\\dir\\base.vhdx" },
		{ "volume_path", "\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\vm\\base.vhdx" },
		{ "absolute_win32_path", "\\\\?\\C:\\vm\\base.vhdx" } }, 5);
	vhdx_locator_seed("vhdx-no-linkage", (struct gen_kv[]){ { "relative_path", "base.vhdx" } }, 1);
	/* "Déjà\💾.vhdx": two-byte characters and a surrogate pair */
	vhdx_locator_seed("vhdx-unicode", (struct gen_kv[]){ { "parent_linkage", link },
							    { "relative_path", "D\xc3\xa9j\xc3\xa0\\\xf0\x9f\x92\xbe.vhdx" } },
			  2);
	vhd_dynhdr_seed("vhd-w2ru-w2ku", (struct gen_vhd_loc[]){
		{ 0x57327275, ru, gen_utf16(".\\base.vhd", 1, ru, sizeof ru) },
		{ 0x57326B75, ku, gen_utf16("C:\\vm\\base.vhd", 1, ku, sizeof ku) } }, 2);
	vhd_dynhdr_seed("vhd-wi2r-macx", (struct gen_vhd_loc[]){
		{ 0x57693272, (const uint8_t *)".\\base.vhd", 10 },
		{ 0x4D616358, (const uint8_t *)"file://localhost/Users/a/base.vhd", 33 },
		{ 0x4D616320, (const uint8_t *)"\0\0alias", 7 } }, 3);
}

/* The locator item of a Hyper-V differencing image, found by its type GUID. */
static void hyperv_locator_seed(const char *conf)
{
	char path[4096];
	uint8_t g[16], *b;
	const uint8_t *i;
	size_t size;
	struct stat st;
	uint64_t end;
	uint16_t n;

	snprintf(path, sizeof path, "%s/hyperv-win10-differencing-orphan.avhdx", conf);
	if (stat(path, &st) < 0)
		return;
	b = slurp(path, &size);
	gen_guid_parse("B04AEFB7-D19E-4A81-B789-25B8E9445913", g);
	i = memmem(b, size, g, 16);
	if (i) {
		n = gen_get_le16(i + 18);
		end = 20 + 12ull * n;
		for (uint16_t k = 0; k < n; k++) {
			const uint8_t *e = i + 20 + 12 * k;
			uint64_t ke = gen_get_le32(e) + (uint64_t)gen_get_le16(e + 8);
			uint64_t ve = gen_get_le32(e + 4) + (uint64_t)gen_get_le16(e + 10);
			end = end > ke ? end : ke;
			end = end > ve ? end : ve;
		}
		if (end > size - (size_t)(i - b))
			end = size - (size_t)(i - b);
		out("fuzz_locator", "hyperv-avhdx-locator", i, (size_t)end);
	}
	free(b);
}

/* The dynamic header of a diskpart differencing VHD with its locator data moved behind it. */
static void diskpart_dynhdr_seed(const char *conf)
{
	char path[4096];
	uint8_t *b, *h;
	size_t size, at = 1024;
	struct stat st;

	snprintf(path, sizeof path, "%s/diskpart-fat-differencing-orphan.vhd", conf);
	if (stat(path, &st) < 0)
		return;
	b = slurp(path, &size);
	h = calloc(1, 1024 + 8 * (size + 512));
	if (!h)
		die("out of memory", path);
	memcpy(h, b + gen_get_be64(b + size - 512 + 16), 1024);
	for (int k = 0; k < 8; k++) {
		uint8_t *e = h + 576 + 24 * k;
		uint32_t ln = gen_get_be32(e + 8);
		uint64_t from = gen_get_be64(e + 16);
		if (!gen_get_be32(e))
			continue;
		if (from > size || ln > size - from)
			die("a locator's data lies past the end", path);
		memcpy(h + at, b + from, ln);
		gen_put_be64(e + 16, at);
		at += (ln + 511) / 512 * 512;
	}
	gen_put_be32(h + 36, gen_vhd_checksum(h, 1024, 36));
	out("fuzz_locator", "diskpart-vhd-dynhdr", h, at);
	free(h);
	free(b);
}

/* ------------------------------------------------------------ generated images */
/*
 * Images of the test-image generator (tests/lib/vhdx_gen.h) for what the
 * other sources lack: a differencing disk with every BAT state and sector
 * bitmaps, 4 KiB logical sectors with 32 MiB blocks, extra metadata items
 * and regions.  Deterministic: the same bytes every run.
 */
static void generated_seed(const char *name, const struct vhdx_gen_opts *o)
{
	struct vhdx_gen_image *img;
	char wname[256];

	if (vhdx_gen_build(o, &img) < 0)
		die("the generator refused the options", name);
	/* the structures only (the payload is the generator's pattern: nothing to learn from) */
	put("fuzz_vhdx_open", name, img->file, img->file_len,
	    &(struct seed_opts){ FIX_VHDX | FIX_LOG, 0, 128 * KiB, false, false });
	snprintf(wname, sizeof wname, "%s-write", name);
	put("fuzz_vhdx_open", wname, img->file, img->file_len,
	    &(struct seed_opts){ FIX_VHDX | FIX_LOG | WRITE, 0x21, 128 * KiB, false, false });
	vhdx_gen_free(img);
}

static void generated_seeds(void)
{
	static const struct vhdx_gen_run runs[] = { { 0, 8 }, { 100, 1 }, { 1024, 512 } };
	static const struct vhdx_gen_block diff[] = {
		{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 1, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = runs, .n_runs = 3 },
		{ .blk = 2, .state = VHDX_BAT_ZERO },
		{ .blk = 3, .state = VHDX_BAT_UNMAPPED },
		{ .blk = 4, .state = VHDX_BAT_UNMAPPED_V095 },
		{ .blk = 5, .state = VHDX_BAT_UNDEFINED },
	};
	static const struct vhdx_gen_block big[] = {
		{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT },
	};
	static const struct vhdx_gen_meta_item meta[] = {
		{ .guid = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01 },
		  .data = "user item", .len = 9, .is_user = true },
	};
	static const struct vhdx_gen_region regions[] = {
		{ .guid = { 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0 },
		  .file_offset = 5 << 20, .length = 1 << 20 },
	};
	static const uint8_t linkage[16] = { 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
					     0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00 };
	struct vhdx_gen_opts o;

	o = (struct vhdx_gen_opts){ .type = VHDX_GEN_DIFFERENCING, .virtual_size = 8 << 20, .seed = 1,
				    .blocks = diff, .n_blocks = 6, .parent_path = "..\\base.vhdx" };
	memcpy(o.parent_linkage, linkage, 16);
	generated_seed("gen-diff-states.avhdx", &o);
	o = (struct vhdx_gen_opts){ .type = VHDX_GEN_DYNAMIC, .virtual_size = 96 << 20, .seed = 2,
				    .block_size = 32 << 20, .logical_sector_size = 4096, .blocks = big, .n_blocks = 1 };
	generated_seed("gen-4k-32M-blocks.vhdx", &o);
	o = (struct vhdx_gen_opts){ .type = VHDX_GEN_FIXED, .virtual_size = 3 << 20, .seed = 3,
				    .extra_meta = meta, .n_extra_meta = 1, .extra_regions = regions, .n_extra_regions = 1 };
	generated_seed("gen-fixed-extra-items.vhdx", &o);
}

/* ------------------------------------------------------------ fault rules */
static void rule_seeds(void)
{
	static const char *const rules[][2] = {
		{ "basic", "op=read voff=1048576-1114111 err=EIO   # the second MiB's first 64 KiB\n" },
		{ "crash", "op=write after=5 torn=3 crash\nop=flush nth=2 crash\n" },
		{ "mixed", "op=read voff=2M+64K flip=1 seed=11\nop=read voff=3M+4K err=EIO\n"
			   "op=read voff=4M+4K delay=400\nop=read voff=5M+4K err=ETIMEDOUT once\n" },
		{ "structs", "op=read struct=header nth=1 flip=1\nop=write struct=bat nth=1 crash\n"
			     "op=write struct=log nth=1 crash\nop=read struct=payload,bitmap every=3 prob=0.5 seed=7 err=EIO\n" },
		{ "files", "# comment line\n\n  file=*.avhdx op=any off=0x30000+64K short=512 err=ENOSPC\n"
			   "op=truncate off=1G err=EFBIG\nop=open nth=5\nop=close err=EIO\n" },
		{ "numbers", "op=write off=4096 delay=2 every=5 after=10\nop=read off=1T-2T err=7\n"
			     "op=read voff=0-0xffffffffffffffff prob=1 seed=0x10 flip=64\n" },
	};

	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		out("fuzz_fault_rules", rules[i][0], (const uint8_t *)rules[i][1], strlen(rules[i][1]));
}

/*
 * The image a sparse seed describes (its records over zeros), written to
 * IMAGE: for checking that a seed made from it is the same seed again.
 */
static int expand(const char *seed_path, const char *image)
{
	size_t len, pos = 16;
	uint8_t *s = slurp(seed_path, &len), *b;
	uint64_t size;
	int err;

	if (len < 16 || memcmp(s, "VXFZ", 4))
		die("not a sparse seed", seed_path);
	size = gen_get_le64(s + 8);
	if (size > (1ull << 30))
		die("the image is over 1 GiB", seed_path);
	b = calloc(1, size ? (size_t)size : 1);
	if (!b)
		die("out of memory", seed_path);
	while (pos + 12 <= len) {
		uint64_t off = gen_get_le64(s + pos);
		size_t n = gen_get_le32(s + pos + 8);
		pos += 12;
		if (n > len - pos || off > size || n > size - off)
			die("a record lies past the end", seed_path);
		memcpy(b + off, s + pos, n);
		pos += n;
	}
	err = gen_write_sparse(image, b, (size_t)size);
	if (err < 0)
		die(strerror(-err), image);
	free(b);
	free(s);
	return 0;
}

int main(int argc, char **argv)
{
	const char *conf = NULL, *gen = NULL;
	int a = 1;

	if (argc == 4 && !strcmp(argv[1], "--expand"))
		return expand(argv[2], argv[3]);

	for (; a + 1 < argc && argv[a][0] == '-'; a += 2) {
		if (!strcmp(argv[a], "--conf"))
			conf = argv[a + 1];
		else if (!strcmp(argv[a], "--gen"))
			gen = argv[a + 1];
		else
			break;
	}
	if (argc - a != 1) {
		fprintf(stderr, "Usage: make_seeds [--conf DIR] [--gen DIR] CORPUS\n"
				"       make_seeds --expand SEED IMAGE\n"
				"Writes the seed corpora into CORPUS/fuzz_<target>/ (fuzz/README),\n"
				"or the image a sparse seed holds (zeros where it has no record).\n");
		return 2;
	}
	corpus = argv[a];
	if (mkdir(corpus, 0755) < 0 && errno != EEXIST)
		die(strerror(errno), corpus);
	hand_made_locator_seeds();
	if (conf) {
		hyperv_locator_seed(conf);
		diskpart_dynhdr_seed(conf);
	}
	rule_seeds();
	generated_seeds();
	if (conf)
		image_seeds(conf, true);
	if (gen)
		image_seeds(gen, false);
	return 0;
}
