/*
 * cmd_hash.c - block-hash manifests of a virtual disk, for proving an image
 * unchanged and finding what changed:
 *
 *   vhdx hash   [--block-size N] [--json] IMAGE        a manifest on stdout
 *   vhdx verify IMAGE MANIFEST                         exit 0 / 3 + mismatching ranges
 *   vhdx diff   [--block-size N] [--json] A B          ranges that differ
 *
 * A manifest holds one XXH3-64 digest per block of the virtual disk and a
 * disk digest, XXH3-128 over the block digests in order (each as 8 bytes
 * little-endian), so the disk digest needs no second pass over the data.
 * Ranges the allocation map reports as zeros are hashed without reading:
 * every whole zero block has the same digest.  The format is text:
 *
 *   # vhdx-hash 1 xxh3-64
 *   virtual_size 10485760
 *   block_size 1048576
 *   disk 0123...(32 hex digits)
 *   0 1d0e...(16 hex digits)
 *   1048576 ...
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(HAVE_XXH3_DISPATCH) && (defined(__x86_64__) || defined(__i386__))
#include <xxh_x86dispatch.h> /* XXH3_64bits becomes the AVX2/AVX-512 dispatching variant */
#else
#include <xxhash.h>
#endif

#include "tool.h"

#define DEFAULT_BLOCK (1u << 20)
#define READ_CHUNK (8u << 20)

struct digests {
	uint64_t virtual_size;
	uint32_t block_size;
	uint64_t n;
	uint64_t *h;        /* n block digests */
	XXH128_hash_t disk;
};

static void digests_free(struct digests *d)
{
	free(d->h);
	d->h = NULL;
}

/* Computes the digests of IMG in blocks of BS bytes (0: 1 MiB). */
static int compute(struct vhdx_image *img, uint32_t bs, struct digests *d, const char *cmd)
{
	struct vhdx_info info = { .struct_size = sizeof info };
	XXH3_state_t *disk;
	uint8_t *buf, *zeros, le[8];
	uint64_t zero_hash;
	int rc = EXIT_OK;

	vhdx_get_info(img, &info);
	d->virtual_size = info.virtual_size;
	d->block_size = bs ? bs : DEFAULT_BLOCK;
	d->n = (info.virtual_size + d->block_size - 1) / d->block_size;
	d->h = calloc(d->n ? d->n : 1, sizeof *d->h);
	buf = malloc(d->block_size > READ_CHUNK ? d->block_size : READ_CHUNK);
	zeros = calloc(1, d->block_size);
	disk = XXH3_createState();
	if (!d->h || !buf || !zeros || !disk) {
		tool_error(cmd, "out of memory for %" PRIu64 " block digests", d->n);
		rc = EXIT_ERR;
		goto out;
	}
	zero_hash = XXH3_64bits(zeros, d->block_size);
	for (uint64_t blk = 0; blk < d->n;) {
		uint64_t off = blk * d->block_size;
		uint64_t len = d->virtual_size - off < d->block_size ? d->virtual_size - off : d->block_size;
		struct vhdx_extent e;
		int r = vhdx_map(img, off, d->virtual_size - off, &e);

		if (r < 0) {
			rc = tool_lib_error(cmd, r);
			goto out;
		}
		if (e.kind == VHDX_EXTENT_ZERO && e.len >= len) {
			/* every whole block inside the zero extent: the same digest, nothing read */
			uint64_t whole = e.len / d->block_size;
			if (whole == 0)
				whole = 1; /* the last, partial block */
			for (uint64_t k = 0; k < whole && blk < d->n; k++, blk++) {
				uint64_t boff = blk * d->block_size;
				uint64_t blen = d->virtual_size - boff < d->block_size ? d->virtual_size - boff
										       : d->block_size;
				d->h[blk] = blen == d->block_size ? zero_hash : XXH3_64bits(zeros, blen);
			}
			continue;
		}
		/* read a run of blocks at once, then hash each */
		{
			uint64_t chunk_blocks = (d->block_size >= READ_CHUNK) ? 1 : READ_CHUNK / d->block_size;
			uint64_t nb = d->n - blk < chunk_blocks ? d->n - blk : chunk_blocks;
			uint64_t rlen = nb * d->block_size;
			ssize_t got;
			if (off + rlen > d->virtual_size)
				rlen = d->virtual_size - off;
			got = vhdx_pread(img, buf, (size_t)rlen, off);
			if (got < 0) {
				rc = tool_lib_error(cmd, (int)got);
				goto out;
			}
			for (uint64_t k = 0; k < nb; k++) {
				uint64_t boff = k * d->block_size;
				uint64_t blen = rlen - boff < d->block_size ? rlen - boff : d->block_size;
				d->h[blk + k] = XXH3_64bits(buf + boff, blen);
			}
			blk += nb;
		}
	}
	XXH3_128bits_reset(disk);
	for (uint64_t i = 0; i < d->n; i++) {
		for (int b = 0; b < 8; b++)
			le[b] = (uint8_t)(d->h[i] >> (8 * b));
		XXH3_128bits_update(disk, le, 8);
	}
	d->disk = XXH3_128bits_digest(disk);
out:
	XXH3_freeState(disk);
	free(buf);
	free(zeros);
	return rc;
}

static int parse_block_size(const char *arg, uint32_t *out, const char *cmd)
{
	uint64_t v;

	if (tool_parse_size(arg, &v) < 0 || v < 512 || v > (1u << 30) || v % 512) {
		tool_error(cmd, "--block-size takes a multiple of 512 from 512 to 1G, got '%s'", arg);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static void print_manifest(FILE *f, const struct digests *d, bool json)
{
	if (json) {
		fprintf(f, "{\"format\":\"vhdx-hash\",\"version\":1,\"algorithm\":\"xxh3-64\",\"virtual_size\":%" PRIu64
			   ",\"block_size\":%u,\"disk\":\"%016" PRIx64 "%016" PRIx64 "\",\"blocks\":[",
			d->virtual_size, d->block_size, d->disk.high64, d->disk.low64);
		for (uint64_t i = 0; i < d->n; i++)
			fprintf(f, "%s{\"offset\":%" PRIu64 ",\"xxh3\":\"%016" PRIx64 "\"}", i ? "," : "",
				i * d->block_size, d->h[i]);
		fputs("]}\n", f);
		if (f == stdout)
			tool_json_printed();
		return;
	}
	fprintf(f, "# vhdx-hash 1 xxh3-64\nvirtual_size %" PRIu64 "\nblock_size %u\ndisk %016" PRIx64 "%016" PRIx64 "\n",
		d->virtual_size, d->block_size, d->disk.high64, d->disk.low64);
	for (uint64_t i = 0; i < d->n; i++)
		fprintf(f, "%" PRIu64 " %016" PRIx64 "\n", i * d->block_size, d->h[i]);
}

/* Reads a text manifest; EXIT_OK or EXIT_ERR with a message naming the line. */
static int load_manifest(const char *path, struct digests *d, const char *cmd)
{
	FILE *f = fopen(path, "r");
	char line[256];
	unsigned lineno = 0;
	uint64_t next = 0;
	bool have_vs = false, have_bs = false, have_disk = false;

	memset(d, 0, sizeof *d);
	if (!f) {
		tool_error(cmd, "%s: %s", path, strerror(errno));
		return EXIT_ERR;
	}
	while (fgets(line, sizeof line, f)) {
		uint64_t a, b;
		char hex[64];
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "virtual_size %" SCNu64, &a) == 1) {
			d->virtual_size = a;
			have_vs = true;
		} else if (sscanf(line, "block_size %" SCNu64, &a) == 1 && a >= 512 && a <= (1u << 30)) {
			d->block_size = (uint32_t)a;
			have_bs = true;
		} else if (sscanf(line, "disk %32s", hex) == 1 && strlen(hex) == 32) {
			char hi[17], lo[17];
			memcpy(hi, hex, 16);
			hi[16] = 0;
			memcpy(lo, hex + 16, 17);
			d->disk.high64 = strtoull(hi, NULL, 16);
			d->disk.low64 = strtoull(lo, NULL, 16);
			have_disk = true;
		} else if (sscanf(line, "%" SCNu64 " %16s", &a, hex) == 2 && strlen(hex) == 16 && have_vs && have_bs) {
			if (!d->h) {
				d->n = (d->virtual_size + d->block_size - 1) / d->block_size;
				if (d->n > (1ull << 32) || !(d->h = calloc(d->n ? d->n : 1, sizeof *d->h)))
					goto bad;
			}
			if (a != next * d->block_size || next >= d->n)
				goto bad;
			b = strtoull(hex, NULL, 16);
			d->h[next++] = b;
		} else {
			goto bad;
		}
	}
	fclose(f);
	if (!have_vs || !have_bs || !have_disk || next != d->n) {
		tool_error(cmd, "%s: not a complete vhdx-hash manifest (%" PRIu64 " of %" PRIu64 " blocks)", path, next,
			   d->n);
		digests_free(d);
		return EXIT_ERR;
	}
	return EXIT_OK;
bad:
	fclose(f);
	tool_error(cmd, "%s line %u: not a vhdx-hash manifest line: %s", path, lineno, line);
	digests_free(d);
	return EXIT_ERR;
}

/* Prints the runs of differing blocks (DIFF[i] true) as ranges; returns how many. */
static uint64_t print_ranges(const bool *diff, uint64_t n, uint32_t bs, uint64_t vsize, bool json, const char *what)
{
	uint64_t count = 0;

	if (json)
		printf("{\"%s\":[", what);
	for (uint64_t i = 0; i < n;) {
		uint64_t j = i;
		if (!diff[i]) {
			i++;
			continue;
		}
		while (j < n && diff[j])
			j++;
		{
			uint64_t off = i * (uint64_t)bs, end = j * (uint64_t)bs;
			if (end > vsize)
				end = vsize;
			if (json)
				printf("%s{\"offset\":%" PRIu64 ",\"length\":%" PRIu64 "}", count ? "," : "", off, end - off);
			else
				printf("%s 0x%012" PRIx64 " 0x%012" PRIx64 "\n", what, off, end - off);
		}
		count++;
		i = j;
	}
	if (json) {
		printf("],\"count\":%" PRIu64 "}\n", count);
		tool_json_printed();
	}
	return count;
}

static void hash_help(FILE *f)
{
	fprintf(f, "Usage: vhdx hash [--block-size N] [--json] [-o MANIFEST] IMAGE\n\n"
		   "Prints an XXH3-64 digest of every block of the virtual disk (default 1M\n"
		   "blocks) and a disk digest (XXH3-128 over the block digests).  Ranges the\n"
		   "allocation map reports as zeros are not read.  Save it and check an image\n"
		   "against it later with 'vhdx verify'.\n\n"
		   "  --block-size N   bytes per digest (a multiple of 512)\n"
		   "  -o, --output F   write the manifest to F instead of standard output\n"
		   "  --json           JSON instead of the text manifest\n"
		   "  -h, --help       this text\n\n" TOOL_OPEN_HELP TOOL_SHARE_HELP);
}

int cmd_hash(int argc, char **argv)
{
	enum { OPT_BS = OPT__NEXT };
	static const struct option longopts[] = {
		{ "block-size", required_argument, NULL, OPT_BS },
		{ "output", required_argument, NULL, 'o' },
		TOOL_JSON_LONGOPT,
		TOOL_READ_LONGOPTS_END,
	};
	struct tool_open to;
	struct vhdx_image *img;
	struct digests d = { 0 };
	uint32_t bs = 0;
	bool json = false;
	const char *out = NULL;
	FILE *f = stdout;
	struct tool_outfile of;
	int c, rc;
	struct tool_cmd tc = { .name = "hash", .help = hash_help, .shortopts = "ho:U", .longopts = longopts,
			       .open = &to, .json = &json };

	tool_open_init(&to);
	while ((c = tool_getopt(&tc, argc, argv)) != -1) {
		if (c == OPT_BS && parse_block_size(optarg, &bs, "hash") < 0)
			return EXIT_USAGE;
		if (c == 'o')
			out = optarg;
	}
	if (tool_operands(&tc, argc, 1, "one IMAGE"))
		return tc.rc;
	rc = tool_open_image(&to, argv[optind], "hash", &img);
	if (rc)
		return rc;
	rc = compute(img, bs, &d, "hash");
	vhdx_close(img);
	if (rc == EXIT_OK) {
		/* -o FILE: written under a temporary name and renamed when complete, so an
		 * interrupted hash never leaves a partial manifest that verify would trust */
		if (out && tool_outfile_begin(&of, "hash", out) != EXIT_OK) {
			rc = EXIT_ERR;
		} else if (out && !(f = fopen(of.tmp, "w"))) {
			tool_error("hash", "%s: %s", out, strerror(errno));
			tool_outfile_abort(&of);
			rc = EXIT_ERR;
		} else {
			print_manifest(f, &d, json);
			if (out && (fflush(f) != 0 || fsync(fileno(f)) != 0)) {
				tool_error("hash", "%s: %s", out, strerror(errno));
				fclose(f);
				tool_outfile_abort(&of);
				rc = EXIT_ERR;
			} else if (out && fclose(f) != 0) {
				tool_error("hash", "%s: %s", out, strerror(errno));
				tool_outfile_abort(&of);
				rc = EXIT_ERR;
			} else if (out) {
				rc = tool_outfile_commit(&of, "hash", true);
			}
		}
	}
	digests_free(&d);
	return rc;
}

static void verify_help(FILE *f)
{
	fprintf(f, "Usage: vhdx verify [--json] IMAGE MANIFEST\n\n"
		   "Hashes IMAGE with the block size of MANIFEST (made by 'vhdx hash') and\n"
		   "compares.  Exit 0 when every block matches; exit 3 and one line per range\n"
		   "of differing blocks ('mismatch OFFSET LENGTH') otherwise.\n\n"
		   "  --json           the result as JSON\n"
		   "  -h, --help       this text\n\n" TOOL_OPEN_HELP TOOL_SHARE_HELP);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		TOOL_JSON_LONGOPT,
		TOOL_READ_LONGOPTS_END,
	};
	struct tool_open to;
	struct vhdx_image *img;
	struct digests want, got = { 0 };
	bool json = false, *diff;
	uint64_t bad;
	int c, rc;
	struct tool_cmd tc = { .name = "verify", .help = verify_help, .shortopts = "hU", .longopts = longopts,
			       .open = &to, .json = &json };

	tool_open_init(&to);
	while ((c = tool_getopt(&tc, argc, argv)) != -1)
		; /* --json and the chain options only */
	if (tool_operands(&tc, argc, 2, "IMAGE and MANIFEST"))
		return tc.rc;
	rc = load_manifest(argv[optind + 1], &want, "verify");
	if (rc)
		return rc;
	rc = tool_open_image(&to, argv[optind], "verify", &img);
	if (rc) {
		digests_free(&want);
		return rc;
	}
	rc = compute(img, want.block_size, &got, "verify");
	vhdx_close(img);
	if (rc) {
		digests_free(&want);
		return rc;
	}
	if (got.virtual_size != want.virtual_size) {
		tool_error("verify", "the disk is %" PRIu64 " bytes, the manifest describes %" PRIu64, got.virtual_size,
			   want.virtual_size);
		digests_free(&want);
		digests_free(&got);
		return EXIT_PROBLEMS;
	}
	diff = calloc(got.n ? got.n : 1, sizeof *diff);
	if (!diff) {
		tool_error("verify", "out of memory");
		return EXIT_ERR;
	}
	for (uint64_t i = 0; i < got.n; i++)
		diff[i] = got.h[i] != want.h[i];
	bad = print_ranges(diff, got.n, got.block_size, got.virtual_size, json, "mismatch");
	if (!json && !bad)
		printf("ok: %" PRIu64 " blocks of %u bytes match (disk %016" PRIx64 "%016" PRIx64 ")\n", got.n,
		       got.block_size, got.disk.high64, got.disk.low64);
	free(diff);
	digests_free(&want);
	digests_free(&got);
	return bad ? EXIT_PROBLEMS : EXIT_OK;
}

static void diff_help(FILE *f)
{
	fprintf(f, "Usage: vhdx diff [--block-size N] [--json] A B\n\n"
		   "Lists the ranges (in blocks of N bytes, default 1M) where the virtual disks\n"
		   "of A and B differ: two images, or two layers of one chain (open a layer\n"
		   "alone with --no-parent).  Exit 0 when they are identical, 3 otherwise.\n"
		   "Disks of different sizes are compared over the shorter one, and the rest\n"
		   "is reported as differing.\n\n"
		   "  --block-size N   granularity of the comparison\n"
		   "  --json           the result as JSON\n"
		   "  -h, --help       this text\n\n" TOOL_OPEN_HELP TOOL_SHARE_HELP);
}

int cmd_diff(int argc, char **argv)
{
	enum { OPT_BS = OPT__NEXT };
	static const struct option longopts[] = {
		{ "block-size", required_argument, NULL, OPT_BS },
		TOOL_JSON_LONGOPT,
		TOOL_READ_LONGOPTS_END,
	};
	struct tool_open to;
	struct vhdx_image *a = NULL, *b = NULL;
	struct digests da = { 0 }, db = { 0 };
	uint32_t bs = 0;
	bool json = false, *diff = NULL;
	uint64_t n, bad;
	int c, rc;
	struct tool_cmd tc = { .name = "diff", .help = diff_help, .shortopts = "hU", .longopts = longopts,
			       .open = &to, .json = &json };

	tool_open_init(&to);
	while ((c = tool_getopt(&tc, argc, argv)) != -1)
		if (c == OPT_BS && parse_block_size(optarg, &bs, "diff") < 0)
			return EXIT_USAGE;
	if (tool_operands(&tc, argc, 2, "two images A and B"))
		return tc.rc;
	rc = tool_open_image(&to, argv[optind], "diff", &a);
	if (rc == EXIT_OK)
		rc = tool_open_image(&to, argv[optind + 1], "diff", &b);
	if (rc == EXIT_OK)
		rc = compute(a, bs, &da, "diff");
	if (rc == EXIT_OK)
		rc = compute(b, bs, &db, "diff");
	vhdx_close(a);
	vhdx_close(b);
	if (rc)
		goto out;
	n = da.n > db.n ? da.n : db.n;
	diff = calloc(n ? n : 1, sizeof *diff);
	if (!diff) {
		tool_error("diff", "out of memory");
		rc = EXIT_ERR;
		goto out;
	}
	for (uint64_t i = 0; i < n; i++)
		diff[i] = i >= da.n || i >= db.n || da.h[i] != db.h[i];
	/* a shorter disk's partial last block differs by length even when the bytes agree */
	if (da.virtual_size != db.virtual_size && da.n && db.n) {
		uint64_t last = (da.n < db.n ? da.n : db.n) - 1;
		diff[last] = true;
	}
	bad = print_ranges(diff, n, da.block_size, da.virtual_size > db.virtual_size ? da.virtual_size : db.virtual_size,
			   json, "differ");
	rc = bad ? EXIT_PROBLEMS : EXIT_OK;
out:
	free(diff);
	digests_free(&da);
	digests_free(&db);
	return rc;
}
