/*
 * bench_util.c - helpers of `vhdx bench` (bench.h): the figure list,
 * clocks and medians, the repeatable random sequence, running another
 * program and timing it, page-cache control, and the test disks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "tool.h"

struct bench_fig bench_figs[BENCH_MAX_FIGS];
unsigned bench_nfigs;

struct bench_fig *bench_add(unsigned figure, const char *name, const char *unit, const char *baseline_is,
			    enum bench_goal goal, double target)
{
	struct bench_fig *f;

	if (bench_nfigs == BENCH_MAX_FIGS) {
		fprintf(stderr, "vhdx bench: too many figures\n");
		exit(EXIT_ERR);
	}
	f = &bench_figs[bench_nfigs++];
	memset(f, 0, sizeof *f);
	f->figure = figure;
	f->name = name;
	f->unit = unit;
	f->baseline_is = baseline_is;
	f->goal = goal;
	f->target = target;
	f->ours = -1;
	f->base = -1;
	return f;
}

void bench_skip(struct bench_fig *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->skip, sizeof f->skip, fmt, ap);
	va_end(ap);
}

double bench_now(void)
{
	return tool_now();
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t rng = 88172645463325252ull;

uint64_t bench_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

void bench_fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v = bench_rand();
		memcpy(p + i, &v, 8);
	}
}

void bench_log(const struct bench *b, const char *fmt, ...)
{
	va_list ap;

	if (b->quiet)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "vhdx bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void bench_die(const char *what)
{
	fprintf(stderr, "vhdx bench: %s: %s\n", what, vhdx_errmsg());
	exit(EXIT_ERR);
}

void bench_path(char *out, const struct bench *b, const char *name)
{
	snprintf(out, 1100, "%s/%s", b->dir, name);
}

bool bench_have(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (strchr(name, '/'))
		return access(name, X_OK) == 0;
	while (path && *path) {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, name);
		if (access(buf, X_OK) == 0)
			return true;
		path = end ? end + 1 : NULL;
	}
	return false;
}

double bench_run_cpu(char *const argv[], const char *in, const char *out, double *cpu)
{
	double t = bench_now();
	struct rusage ru;
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fi = open(in ? in : "/dev/null", O_RDONLY);
		int fo = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644) : open("/dev/null", O_WRONLY);
		int fe = open("/dev/null", O_WRONLY);
		if (fi < 0 || fo < 0 || fe < 0)
			_exit(127);
		dup2(fi, 0);
		dup2(fo, 1);
		if (!getenv("VHDX_BENCH_DEBUG"))
			dup2(fe, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		return -1;
	t = bench_now() - t;
	if (cpu)
		*cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
		       (double)ru.ru_stime.tv_usec / 1e6;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1;
}

double bench_run(char *const argv[], const char *in, const char *out)
{
	return bench_run_cpu(argv, in, out, NULL);
}

int bench_drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY);
	int ret;

	if (fd < 0)
		return -errno;
	fdatasync(fd);
	ret = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return -ret;
}

void bench_warm(const char *path)
{
	static uint8_t buf[1 << 20];
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return;
	while (read(fd, buf, sizeof buf) > 0)
		;
	close(fd);
}

void bench_new_image(const char *path, uint64_t size, uint32_t bs, const char *parent, struct vhdx_image **img)
{
	struct vhdx_create_options co;

	vhdx_create_options_init(&co);
	co.virtual_size = size;
	co.block_size = bs;
	co.parent = parent;
	co.flags = VHDX_CREATE_OVERWRITE;
	if (vhdx_create(path, &co) < 0)
		bench_die(path);
	if (!img)
		return;
	if (tool_open_flags(path, VHDX_OPEN_RDWR, NULL, img) < 0)
		bench_die(path);
}

void bench_make_pair(struct bench *b, const char *vhdx, const char *raw, uint64_t size, uint32_t bs)
{
	struct vhdx_image *img;
	int fd;

	bench_new_image(vhdx, size, bs, NULL, &img);
	fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(raw);
		exit(EXIT_ERR);
	}
	for (uint64_t off = 0; off < size; off += 1u << 20) {
		const uint8_t *p = b->data + off % b->data_len;
		size_t n = (size_t)(size - off < (1u << 20) ? size - off : 1u << 20);
		if (vhdx_pwrite(img, p, n, off) < 0)
			bench_die(vhdx);
		if (pwrite(fd, p, n, (off_t)off) != (ssize_t)n) {
			perror(raw);
			exit(EXIT_ERR);
		}
	}
	if (vhdx_close(img) < 0)
		bench_die(vhdx);
	close(fd);
}

void bench_prepare_pair(struct bench *b)
{
	if (b->pair_ready)
		return;
	bench_path(b->vhdx, b, "seq.vhdx");
	bench_path(b->raw, b, "seq.raw");
	bench_log(b, "building a %llu MiB fully allocated dynamic VHDX (32 MiB blocks) and its raw twin",
		  (unsigned long long)(b->size >> 20));
	bench_make_pair(b, b->vhdx, b->raw, b->size, 32u << 20);
	b->pair_ready = true;
}
