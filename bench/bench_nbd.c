/*
 * bench_nbd.c - figure 9 of `vhdx bench` (bench.h): serving an image over
 * NBD, our nbdkit plugin against the servers users run today.
 *
 *   9 nbd-seq-vs-qemu-nbd    the whole disk copied by nbdcopy to null:
 *                            from `nbdkit vhdx file=IMG` vs from
 *                            `qemu-nbd -r -f vhdx IMG`, figure 1's fully
 *                            allocated dynamic VHDX
 *   9 nbd-rand-vs-qemu-nbd   random 4 KiB reads at queue depth 16 (fio's
 *                            nbd engine), the same two servers
 *   9 nbd-seq-vs-file        the plugin vs `nbdkit file` serving the raw
 *   9 nbd-rand-vs-file       twin: the limit of the server itself
 *   9 nbd-chain-seq          a two-layer chain (a checkpoint over figure 1's
 *   9 nbd-chain-rand         image holding every fourth MiB) served by the
 *                            plugin, vs the plugin serving the base alone
 *   9 nbd-chain-vs-qemu-nbd  the chain's sequential figure; its baseline is
 *                            always skipped with qemu-nbd's own refusal of
 *                            a differencing VHDX (the reason to record)
 *   9 nbd-http-vs-qemu-img   figure 1's image served over HTTP by lighttpd
 *                            on 127.0.0.1, decoded and thrown away:
 *                            `nbdkit curl url=URL --filter=vhdx --run
 *                            'nbdcopy "$uri" null:'` vs `qemu-img convert
 *                            -n -m 1 -f vhdx --target-image-opts URL
 *                            driver=null-co,size=N` (qemu's curl driver;
 *                            with more than one coroutine qemu 7.2 stalls
 *                            for good against lighttpd), server start
 *                            included.  Both discard the disk: writing a
 *                            local file would measure the local disk.
 *   9 nbd-http-limit         the NBD transport's own ceiling against the
 *                            same qemu-img figure: `nbdkit file` of the
 *                            raw twin to nbdcopy null:, no HTTP and no
 *                            decoding.  No server behind nbdkit beats it,
 *                            so where it misses 1.5 the HTTP row cannot
 *                            meet its target on this machine.
 *   9 nbd-http-ceiling       the HTTP row's best case on this machine: its
 *                            bytes over its CPU seconds (nbdkit, the curl
 *                            plugin, the filter, nbdcopy, and lighttpd's
 *                            share) spread over every online core, against
 *                            the same qemu-img figure.  No scheduling of
 *                            the same work beats it; below 1.5 the target
 *                            needs less CPU per byte in the pipeline.
 *
 * Every server listens on a Unix socket in the run's folder and runs in
 * the foreground as our child (killed by its PID when its rows are done).
 * Caches: WARM, the files are read into the page cache before each run,
 * so the figures measure the servers, not the disk.  The plugin is taken
 * from the build tree beside this program (../nbdkit/.libs), else nbdkit
 * looks for an installed "vhdx" plugin.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "tool.h"

#define NBD_QD "16"

struct server {
	pid_t pid;
	char sock[1100];
	char uri[1200];
};

/* The plugin beside this program in the build tree, or "vhdx" (nbdkit's plugin folder); its folder in DIR. */
static void find_plugin(const struct bench *b, char *out, size_t n, char *dir, size_t dn)
{
	const char *slash = strrchr(b->vhdx_exe, '/');

	snprintf(dir, dn, "%.*s/../nbdkit/.libs", slash ? (int)(slash - b->vhdx_exe) : 1, slash ? b->vhdx_exe : ".");
	snprintf(out, n, "%.900s/nbdkit-vhdx-plugin.so", dir);
	if (access(out, R_OK) != 0)
		snprintf(out, n, "vhdx");
}

/*
 * Starts ARGV (which listens on S->sock) as a child with its output in
 * LOG; waits up to 20 s for it to answer (nbdinfo --size).  true when it
 * serves; false
 * with the first line of its output (or why) in WHY.
 */
static bool server_start(struct server *s, char *const argv[], const char *log, char *why, size_t whylen)
{
	struct stat st;
	int status;

	unlink(s->sock);
	s->pid = fork();
	if (s->pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return false;
	}
	if (s->pid == 0) {
		int fo = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644), fi = open("/dev/null", O_RDONLY);
		if (fo < 0 || fi < 0)
			_exit(127);
		dup2(fi, 0);
		dup2(fo, 1);
		dup2(fo, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	for (int i = 0; i < 400; i++) {
		/* qemu-nbd makes its socket before it opens the image: only an answer counts */
		char *probe[] = { (char *)"nbdinfo", (char *)"--size", s->uri, NULL };
		if (stat(s->sock, &st) == 0 && S_ISSOCK(st.st_mode) && bench_run(probe, NULL, NULL) > 0)
			return true;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			FILE *f = fopen(log, "r");
			char line[200] = "";
			if (f) {
				if (!fgets(line, sizeof line, f))
					line[0] = 0;
				fclose(f);
			}
			line[strcspn(line, "\n")] = 0;
			snprintf(why, whylen, "%s exited (status %d): %s", argv[0],
				 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
				 line[0] ? line : (WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "could not run it" : "no message"));
			s->pid = 0;
			return false;
		}
		usleep(50000);
	}
	snprintf(why, whylen, "%s did not listen on its socket within 20 s", argv[0]);
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
	return false;
}

/* Stops a server we started (SIGTERM, then waits for it). */
static void server_stop(struct server *s)
{
	int status;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
	unlink(s->sock);
}

/* Names S's socket DIR/NAME.sock and its URI. */
static void server_name(struct server *s, const struct bench *b, const char *name)
{
	char file[64];

	snprintf(file, sizeof file, "%s.sock", name);
	bench_path(s->sock, b, file);
	snprintf(s->uri, sizeof s->uri, "nbd+unix:///?socket=%s", s->sock);
	s->pid = 0;
}

/* nbdkit serving PLUGIN with PARAM (file=...), read-only, on S. */
static bool start_nbdkit(struct bench *b, struct server *s, const char *plugin, const char *param, char *why,
			 size_t whylen)
{
	char log[1100];
	char *argv[] = { (char *)"nbdkit", (char *)"-f", (char *)"-r", (char *)"--exit-with-parent", (char *)"-U", s->sock,
			 (char *)plugin, (char *)param, NULL };

	bench_path(log, b, "nbdkit.log");
	return server_start(s, argv, log, why, whylen);
}

/* qemu-nbd serving IMAGE as VHDX read-only on S (8 connections, as nbdcopy opens several). */
static bool start_qemu_nbd(struct bench *b, struct server *s, const char *image, char *why, size_t whylen)
{
	char log[1100];
	char *argv[] = { (char *)"qemu-nbd", (char *)"-r", (char *)"-t", (char *)"-e", (char *)"8", (char *)"-f",
			 (char *)"vhdx", (char *)"-k", s->sock, (char *)image, NULL };

	bench_path(log, b, "qemu-nbd.log");
	return server_start(s, argv, log, why, whylen);
}

/* One sequential copy of the export to null: by nbdcopy: MiB/s, or -1. */
static double seq_once(struct bench *b, const struct server *s, const char *warm)
{
	char *argv[] = { (char *)"nbdcopy", (char *)s->uri, (char *)"null:", NULL };
	double t;

	bench_warm(warm);
	t = bench_run(argv, NULL, NULL);
	return t > 0 ? (double)b->size / t / 1048576.0 : -1;
}

/* Seconds of each random-read run: short for smoke-test disks. */
static const char *rand_runtime(const struct bench *b)
{
	return b->size >= (256ull << 20) ? "3" : "1";
}

/* One fio run of random 4 KiB reads at depth 16 over the export: IOPS, or -1. */
static double rand_once(struct bench *b, const struct server *s, const char *warm)
{
	char out[1100], uri[1300], size[32], runtime[32], *text = NULL, *p;
	double iops = -1;
	FILE *f;
	long n;

	bench_path(out, b, "fio.json");
	snprintf(uri, sizeof uri, "--uri=%s", s->uri);
	snprintf(size, sizeof size, "--size=%llu", (unsigned long long)b->size);
	snprintf(runtime, sizeof runtime, "--runtime=%s", rand_runtime(b));
	char *argv[] = { (char *)"fio", (char *)"--name=nbdrand", (char *)"--ioengine=nbd", uri, (char *)"--rw=randread",
			 (char *)"--bs=4k", (char *)"--iodepth=" NBD_QD, size, runtime, (char *)"--time_based",
			 (char *)"--randrepeat=1", (char *)"--output-format=json", NULL };
	bench_warm(warm);
	if (bench_run(argv, NULL, out) <= 0)
		return -1;
	f = fopen(out, "r");
	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		text = calloc(1, (size_t)n + 1);
		if (text && fread(text, 1, (size_t)n, f) != (size_t)n) {
			free(text);
			text = NULL;
		}
	}
	fclose(f);
	unlink(out);
	/* jobs[0].read.iops: the first "iops" after the job's "read" object */
	if (text && (p = strstr(text, "\"read\" :")) && (p = strstr(p, "\"iops\" :")))
		iops = strtod(p + 8, NULL);
	free(text);
	return iops > 0 ? iops : -1;
}

/* One side of a comparison: a server, the file whose cache warms it, its name in messages. */
struct contender {
	const struct server *srv;
	const char *warm, *name;
};

/*
 * Runs the measurement ONCE (seq_once or rand_once) B->runs times against
 * A and C alternately, after one untimed run of each; medians into *OA and
 * *OC.  false if a run failed (the name of its server in *FAILED).
 */
static bool measure(struct bench *b, double (*once)(struct bench *, const struct server *, const char *),
		    const struct contender *a, const struct contender *c, double *oa, double *oc, const char **failed)
{
	double va[16], vc[16];

	for (int r = -1; r < b->runs; r++) {
		double x = once(b, a->srv, a->warm), y;
		if (x < 0) {
			*failed = a->name;
			return false;
		}
		y = once(b, c->srv, c->warm);
		if (y < 0) {
			*failed = c->name;
			return false;
		}
		if (r >= 0) {
			va[r] = x;
			vc[r] = y;
		}
	}
	*oa = bench_median(va, b->runs);
	*oc = bench_median(vc, b->runs);
	return true;
}

/* A checkpoint over figure 1's image holding every fourth MiB of new data. */
static void make_chain(struct bench *b, char *child)
{
	struct vhdx_image *img;

	bench_path(child, b, "nbd-child.avhdx");
	bench_new_image(child, 0, 0, b->vhdx, &img);
	for (uint64_t off = 0; off < b->size; off += 4u << 20) {
		/* another MiB of the run's data than the base holds here */
		const uint8_t *p = b->data + (((off >> 20) * 7 + 3) % (b->data_len >> 20) << 20);
		if (vhdx_pwrite(img, p, 1u << 20, off) < 0)
			bench_die(child);
	}
	if (vhdx_close(img) < 0)
		bench_die(child);
}

/* A free TCP port on 127.0.0.1 (bound and released: another program may take it first, rarely). */
static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* True when something accepts connections on 127.0.0.1:PORT. */
static bool port_open(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Skips every row in ROWS[0..N) with WHY. */
static void skip_all(struct bench_fig **rows, size_t n, const char *why)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i]->ours < 0 && !rows[i]->skip[0])
			bench_skip(rows[i], "%s", why);
}

/* CPU seconds (user + system) that process PID has used so far, from /proc; -1 if unknown. */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long ut, st;
	const char *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	/* the command name may hold spaces and parentheses: fields count from the last ')' */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The HTTP rows' three commands and what each is (for a skip message), timed in blocks of runs as bench_cmds.c does. */
struct http_cmds {
	char *const *argv[3]; /* ours (the filter over curl), theirs (qemu-img), the transport limit */
	const char *what[3];
};

/*
 * Runs each of C's commands b->runs times (after one unmeasured run) with
 * lighttpd (LIGHTTPD) serving: MiB/s into MIBS[k], and for ours the CPU
 * seconds of the command and of lighttpd together into CPU.  NULL, or the
 * WHAT of the command that failed.
 */
static const char *http_measure(struct bench *b, const struct http_cmds *c, pid_t lighttpd, double mibs[3][16],
				double cpu[16])
{
	for (int k = 0; k < 3; k++) {
		for (int r = -1; r < b->runs; r++) {
			double t, used, before;

			bench_warm(k == 2 ? b->raw : b->vhdx);
			before = proc_cpu(lighttpd);
			t = bench_run_cpu(c->argv[k], NULL, NULL, &used);
			if (t <= 0)
				return c->what[k];
			if (r < 0)
				continue;
			mibs[k][r] = (double)b->size / t / 1048576.0;
			if (k == 0) {
				double after = proc_cpu(lighttpd);
				cpu[r] = before < 0 || after < 0 ? -1 : used + after - before;
			}
		}
	}
	return NULL;
}

/* Writes lighttpd's configuration (serving the run's folder on PORT) to CONF; false if it cannot. */
static bool http_conf(const struct bench *b, const char *conf, const char *log, int port)
{
	FILE *cf = fopen(conf, "w");

	if (!cf)
		return false;
	fprintf(cf, "server.document-root = \"%s\"\nserver.bind = \"127.0.0.1\"\nserver.port = %d\n"
		    "server.errorlog = \"%s\"\nmimetype.assign = (\"\" => \"application/octet-stream\")\n",
		b->dir, port, log);
	return fclose(cf) == 0;
}

/* lighttpd in the foreground serving CONF, as our child; its PID, or -1 if it did not answer on PORT. */
static pid_t http_start(const char *conf, int port)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execlp("lighttpd", "lighttpd", "-D", "-f", conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 200 && !port_open(port); i++)
		usleep(50000);
	if (pid > 0 && !port_open(port)) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
		return -1;
	}
	return pid;
}

/*
 * The HTTP rows (PLUGIN_DIR NULL: nbdkit is missing, every row skipped):
 * lighttpd serves the run's folder on a free port; the vhdx
 * filter on the curl plugin and qemu-img's curl driver each convert
 * figure 1's image from there.  The ceiling row turns our CPU time into
 * the fastest our pipeline could run on this machine's cores, however
 * well its work were spread: where that misses 1.5, only less work per
 * byte can meet the HTTP target, not more parallelism.
 */
static void fig_http(struct bench *b, const char *plugin_dir)
{
	struct bench_fig *f = bench_add(9, "nbd-http-vs-qemu-img", "MiB/s", "qemu-img convert -m 1 -f vhdx of the http:// URL to null-co",
					BENCH_RATIO_AT_LEAST, 1.5);
	struct bench_fig *lim = bench_add(9, "nbd-http-limit", "MiB/s",
					  "qemu-img's HTTP figure; ours: nbdkit file of the raw twin to nbdcopy null: (no HTTP, no decoding)",
					  BENCH_RATIO_AT_LEAST, 1.5);
	struct bench_fig *ceiling = bench_add(9, "nbd-http-ceiling", "MiB/s",
					   "qemu-img's HTTP figure; ours: the HTTP row's bytes over (its CPU seconds with lighttpd's / online cores)",
					   BENCH_RATIO_AT_LEAST, 1.5);
	struct bench_fig *rows[] = { f, lim, ceiling };
	char conf[1100], log[1100], filter[1100], url[300], urlp[320], fparam[1200], nullco[64], rawp[1120];
	double mibs[3][16], cpu[16], cores = (double)sysconf(_SC_NPROCESSORS_ONLN);
	const char *failed;
	pid_t pid = -1;
	int port, status;

	if (!plugin_dir) {
		skip_all(rows, 3, "nbdkit, nbdcopy or nbdinfo (Debian: nbdkit, libnbd-bin) is not installed");
		return;
	}
	if (!bench_have("lighttpd") || !bench_have("qemu-img") || !bench_have("timeout")) {
		skip_all(rows, 3, "lighttpd, qemu-img or timeout is not installed");
		return;
	}
	snprintf(filter, sizeof filter, "%.900s/nbdkit-vhdx-filter.so", plugin_dir);
	if (access(filter, R_OK) != 0)
		snprintf(filter, sizeof filter, "vhdx");
	port = free_port();
	bench_path(conf, b, "lighttpd.conf");
	bench_path(log, b, "lighttpd.log");
	if (port < 0 || !http_conf(b, conf, log, port)) {
		skip_all(rows, 3, "cannot set up lighttpd (port or configuration file)");
		goto out;
	}
	pid = http_start(conf, port);
	if (pid < 0) {
		skip_all(rows, 3, "lighttpd did not start");
		goto out;
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", port, strrchr(b->vhdx, '/') + 1);
	snprintf(urlp, sizeof urlp, "url=%s", url);
	snprintf(fparam, sizeof fparam, "--filter=%s", filter);
	snprintf(nullco, sizeof nullco, "driver=null-co,size=%llu", (unsigned long long)b->size);
	snprintf(rawp, sizeof rawp, "file=%s", b->raw);
	{
		char *ours[] = { (char *)"nbdkit", (char *)"-r", (char *)"-U", (char *)"-", (char *)"curl", urlp, fparam,
				 (char *)"--run", (char *)"nbdcopy \"$uri\" null:", NULL };
		/* -m 1: with its default 8 coroutines qemu 7.2's curl driver stalls for good on this server */
		char *theirs[] = { (char *)"timeout", (char *)"600", (char *)"qemu-img", (char *)"convert", (char *)"-n",
				   (char *)"-m", (char *)"1", (char *)"-f", (char *)"vhdx", (char *)"--target-image-opts", url,
				   nullco, NULL };
		/* the limit of any NBD server here: the transport alone, serving the raw twin */
		char *limit[] = { (char *)"nbdkit", (char *)"-r", (char *)"-U", (char *)"-", (char *)"file", rawp,
				  (char *)"--run", (char *)"nbdcopy \"$uri\" null:", NULL };
		const struct http_cmds cmds = {
			{ ours, theirs, limit },
			{ "nbdkit curl --filter=vhdx", "qemu-img convert of the URL (qemu-block-extra has its curl driver)",
			  "nbdkit file of the raw twin" },
		};

		failed = http_measure(b, &cmds, pid, mibs, cpu);
	}
	if (failed) {
		char why[160];
		snprintf(why, sizeof why, "%s failed", failed);
		skip_all(rows, 3, why);
		goto out;
	}
	f->ours = bench_median(mibs[0], b->runs);
	f->base = lim->base = ceiling->base = bench_median(mibs[1], b->runs);
	lim->ours = bench_median(mibs[2], b->runs);
	for (int r = 0; r < b->runs; r++)
		if (cpu[r] <= 0)
			failed = "/proc gave no CPU time for lighttpd";
	if (failed)
		bench_skip(ceiling, "%s", failed);
	else
		ceiling->ours = (double)b->size / (bench_median(cpu, b->runs) / cores) / 1048576.0;
out:
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
	}
	unlink(conf);
}

/* A pair of figure 9's rows, OURS against THEIRS: sequential (nbdcopy) into SEQ, random (fio) into RND. */
static void measure_rows(struct bench *b, const struct contender *ours, const struct contender *theirs,
			 struct bench_fig *seq, struct bench_fig *rnd, bool have_fio)
{
	const char *failed;

	if (!measure(b, seq_once, ours, theirs, &seq->ours, &seq->base, &failed))
		bench_skip(seq, "nbdcopy from %s failed", failed);
	if (!have_fio)
		bench_skip(rnd, "fio is not installed");
	else if (!measure(b, rand_once, ours, theirs, &rnd->ours, &rnd->base, &failed))
		bench_skip(rnd, "fio (nbd engine) on %s failed", failed);
}

void bench_fig_nbd(struct bench *b)
{
	struct bench_fig *seq_q = bench_add(9, "nbd-seq-vs-qemu-nbd", "MiB/s", "qemu-nbd -f vhdx, nbdcopy to null:",
					    BENCH_RATIO_AT_LEAST, 1.5);
	struct bench_fig *rand_q = bench_add(9, "nbd-rand-vs-qemu-nbd", "IOPS", "qemu-nbd -f vhdx, fio nbd 4k QD16",
					     BENCH_RATIO_AT_LEAST, 1.5);
	struct bench_fig *seq_f = bench_add(9, "nbd-seq-vs-file", "MiB/s", "nbdkit file of the raw twin (the limit)",
					    BENCH_RATIO_AT_LEAST, 0.8);
	struct bench_fig *rand_f = bench_add(9, "nbd-rand-vs-file", "IOPS", "nbdkit file of the raw twin, fio 4k QD16",
					     BENCH_RATIO_AT_LEAST, 0.8);
	struct bench_fig *chain_s = bench_add(9, "nbd-chain-seq", "MiB/s", "the plugin serving the base alone",
					      BENCH_RATIO_AT_LEAST, 0.8);
	struct bench_fig *chain_r = bench_add(9, "nbd-chain-rand", "IOPS", "the plugin serving the base alone",
					      BENCH_RATIO_AT_LEAST, 0.8);
	struct bench_fig *chain_q = bench_add(9, "nbd-chain-vs-qemu-nbd", "MiB/s", "qemu-nbd -f vhdx of the chain",
					      BENCH_RATIO_AT_LEAST, 1.5);
	struct bench_fig *all[] = { seq_q, rand_q, seq_f, rand_f, chain_s, chain_r, chain_q };
	struct server ours, other;
	char plugin[1100], plugin_dir[1100], param[1200], child[1100], why[300];
	struct contender vhdx = { &ours, b->vhdx, "nbdkit vhdx" }; /* the plugin serving figure 1's image */
	bool have_fio = bench_have("fio");

	if (!bench_have("nbdkit") || !bench_have("nbdcopy") || !bench_have("nbdinfo")) {
		skip_all(all, 7, "nbdkit, nbdcopy or nbdinfo (Debian: nbdkit, libnbd-bin) is not installed");
		fig_http(b, NULL);
		return;
	}
	bench_prepare_pair(b);
	find_plugin(b, plugin, sizeof plugin, plugin_dir, sizeof plugin_dir);
	server_name(&ours, b, "ours");
	server_name(&other, b, "other");
	snprintf(param, sizeof param, "file=%s", b->vhdx);
	if (!start_nbdkit(b, &ours, plugin, param, why, sizeof why)) {
		skip_all(all, 7, why);
		fig_http(b, plugin_dir);
		return;
	}
	bench_log(b, "figure 9: nbdkit vhdx vs qemu-nbd and nbdkit file");

	/* against qemu-nbd on the same image */
	if (!bench_have("qemu-nbd")) {
		skip_all(all, 2, "qemu-nbd (Debian: qemu-utils) is not installed");
	} else if (!start_qemu_nbd(b, &other, b->vhdx, why, sizeof why)) {
		skip_all(all, 2, why);
	} else {
		measure_rows(b, &vhdx, &(struct contender){ &other, b->vhdx, "qemu-nbd" }, seq_q, rand_q, have_fio);
		server_stop(&other);
	}

	/* against nbdkit's own file plugin on the raw twin */
	snprintf(param, sizeof param, "file=%s", b->raw);
	if (!start_nbdkit(b, &other, "file", param, why, sizeof why)) {
		skip_all(all + 2, 2, why);
	} else {
		measure_rows(b, &vhdx, &(struct contender){ &other, b->raw, "nbdkit file" }, seq_f, rand_f, have_fio);
		server_stop(&other);
	}

	/* a differencing chain: the plugin serves it, qemu-nbd refuses it */
	make_chain(b, child);
	snprintf(param, sizeof param, "file=%s", child);
	if (!start_nbdkit(b, &other, plugin, param, why, sizeof why)) {
		skip_all(all + 4, 3, why);
	} else {
		/* the chain is "ours" here and the base alone the baseline; both are warmed through the base's file */
		measure_rows(b, &(struct contender){ &other, child, "nbdkit vhdx (chain)" }, &vhdx, chain_s, chain_r,
			     have_fio);
		chain_q->ours = chain_s->ours;
		server_stop(&other);
	}
	server_stop(&ours);
	if (!bench_have("qemu-nbd")) {
		bench_skip(chain_q, "qemu-nbd (Debian: qemu-utils) is not installed");
	} else if (start_qemu_nbd(b, &other, child, why, sizeof why)) {
		server_stop(&other);
		bench_skip(chain_q, "qemu-nbd served the chain: measure it by hand");
	} else {
		/* "qemu-nbd: Failed to blk_new_open 'P': Could not open 'P': REASON": the paths are long, the reason is not */
		const char *tail = strstr(why, "': ");
		for (const char *t = tail; t; t = strstr(t + 3, "': "))
			tail = t;
		bench_skip(chain_q, "qemu-nbd -f vhdx refuses a differencing VHDX: %s", tail ? tail + 3 : why);
	}
	unlink(child);
	fig_http(b, plugin_dir);
}
