/*
 * faults_opt.c - the global fault-injection options of the `vhdx` command
 * (issue #6): `vhdx --faults RULES [--fault-log FILE] COMMAND ...` loads a
 * rules file into one engine that every image the command opens goes
 * through (tool_open_init() puts it in the open options), and at the end
 * writes the injected-fault events and the rules with their hit counts.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

struct vhdx_faults *tool_faults;
static const char *fault_log;

int tool_global_options(int argc, char **argv)
{
	int i = 1;

	while (i < argc && !strncmp(argv[i], "--fault", 7)) {
		const char *opt = argv[i], *val = NULL, *eq = strchr(opt, '=');
		size_t n = eq ? (size_t)(eq - opt) : strlen(opt);
		bool is_rules = n == 8 && !strncmp(opt, "--faults", 8);
		bool is_log = n == 11 && !strncmp(opt, "--fault-log", 11);
		int ret;

		if (!is_rules && !is_log)
			break; /* not ours: main() reports it as an unknown command */
		if (eq) {
			val = eq + 1;
			i++;
		} else if (i + 1 < argc) {
			val = argv[i + 1];
			i += 2;
		} else {
			tool_error(NULL, "%.*s needs a value", (int)n, opt);
			return -EXIT_USAGE;
		}
		if (is_log) {
			fault_log = val;
			continue;
		}
		if (!tool_faults && vhdx_faults_new(&tool_faults) < 0) {
			tool_error(NULL, "%s", vhdx_errmsg());
			return -EXIT_ERR;
		}
		ret = vhdx_faults_load_file(tool_faults, val);
		if (ret < 0) {
			/* a bad rules file is a usage error: nothing ran yet */
			tool_error(NULL, "--faults: %s", vhdx_errmsg());
			return -EXIT_USAGE;
		}
	}
	if (fault_log && !tool_faults) {
		tool_error(NULL, "--fault-log needs --faults");
		return -EXIT_USAGE;
	}
	return i;
}

int tool_faults_finish(int rc)
{
	char *rules = NULL, *events = NULL;
	FILE *f;

	if (!tool_faults)
		return rc;
	if (fault_log) {
		f = strcmp(fault_log, "-") ? fopen(fault_log, "w") : stderr;
		if (!f) {
			tool_error(NULL, "--fault-log %s: %s", fault_log, strerror(errno));
			if (rc == EXIT_OK)
				rc = EXIT_ERR;
		} else {
			if (vhdx_faults_format_rules(tool_faults, &rules) == 0 &&
			    vhdx_faults_format_events(tool_faults, 0, &events, NULL) == 0)
				fprintf(f, "# rules\n%s# events\n%s", rules, events);
			if (f != stderr && fclose(f) != 0 && rc == EXIT_OK) {
				tool_error(NULL, "--fault-log %s: %s", fault_log, strerror(errno));
				rc = EXIT_ERR;
			}
		}
		free(rules);
		free(events);
	}
	vhdx_faults_free(tool_faults);
	tool_faults = NULL;
	return rc;
}
