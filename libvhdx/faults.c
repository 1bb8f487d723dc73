/*
 * faults.c - L4, the public entry points that bring fault rules in from
 * text and from files (libvhdx.h "Fault injection").  The engine itself,
 * its listing, events and counters live in io/fault_engine.c; the rule
 * language in io/fault_rules.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "internal.h"
#include "io/fault.h"

#define RULES_FILE_MAX (64 * VHDX_MiB)

int vhdx_faults_add(struct vhdx_faults *f, const char *text)
{
	vhdx_err_clear();
	return vhdx_fault_engine_add(f, text, "faults");
}

int vhdx_faults_load_file(struct vhdx_faults *f, const char *path)
{
	FILE *fp;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int ret;

	vhdx_err_clear();
	if (!f || !path)
		return vhdx_err(EINVAL, "vhdx_faults_load_file: engine and path must not be NULL");
	fp = fopen(path, "r");
	if (!fp)
		return vhdx_err(errno, "%s: cannot open the fault rules: %s", path, strerror(errno));
	for (;;) {
		size_t got;
		if (len + 4096 + 1 > RULES_FILE_MAX) {
			ret = vhdx_err(EFBIG, "%s: fault rules file larger than %llu bytes", path,
				       (unsigned long long)RULES_FILE_MAX);
			goto out;
		}
		if (grow(&buf, &cap, len + 4096 + 1, 1, 8192) < 0) {
			ret = vhdx_err(ENOMEM, "out of memory");
			goto out;
		}
		got = fread(buf + len, 1, 4096, fp);
		len += got;
		if (got < 4096)
			break;
	}
	if (ferror(fp)) {
		ret = vhdx_err(EIO, "%s: cannot read the fault rules", path);
		goto out;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len))
		ret = vhdx_err(EINVAL, "%s: the fault rules file holds a NUL byte", path);
	else
		ret = vhdx_fault_engine_add(f, buf, path);
out:
	free(buf);
	fclose(fp);
	return ret;
}
