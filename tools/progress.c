/*
 * progress.c - the progress line of long commands (convert, merge,
 * compact): percentage, MiB done and rate on standard error.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>

#include "tool.h"

void tool_progress_start(struct tool_progress *p, const char *cmd, bool on, uint64_t total)
{
	p->cmd = cmd;
	p->on = on;
	p->total = total;
	p->t0 = p->last = tool_now();
	p->open = p->ended = false;
}

void tool_progress_show(struct tool_progress *p, uint64_t done, bool final)
{
	double t, secs;

	if (!p->on || p->ended)
		return;
	t = tool_now();
	if (!final && t - p->last < 0.25)
		return;
	p->last = t;
	p->ended = final;
	p->open = !final;
	secs = t - p->t0;
	fprintf(stderr, "\rvhdx %s: %5.1f%%  %" PRIu64 " / %" PRIu64 " MiB  %.0f MiB/s%s", p->cmd,
		p->total ? 100.0 * (double)done / (double)p->total : 100.0, done >> 20, p->total >> 20,
		secs > 0 ? (double)done / 1048576.0 / secs : 0.0, final ? "\n" : "   ");
	fflush(stderr);
}

int tool_progress_cb(uint64_t done, uint64_t total, void *arg)
{
	struct tool_progress *p = arg;

	p->total = total;
	tool_progress_show(p, done, done >= total);
	return 0;
}

void tool_progress_end(struct tool_progress *p)
{
	if (p->open)
		fputc('\n', stderr);
	p->open = false;
}
