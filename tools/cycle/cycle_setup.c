/*
 * cycle_setup.c - the set-up the drivers of `vhdx cycle` share (mount in
 * cmd_cycle.c, checkpoint in cycle_checkpoint.c, mount --fs in cycle_fs.c):
 * their options, parsed from a table each driver gives (the option, where
 * its value goes, its range), the checks after the options, the fault rules,
 * and the model of the image's contents at the start.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cycle.h"

#define MAX_OPTS 32
#define OPT_ID(i) (OPT__NEXT + (int)(i)) /* the getopt value of a long-only option: its table index */

/* Stores the value of option O (ARG its argument) into RUN.  0, or -1 after the message. */
static int store_option(const struct cycle_opt *o, void *run, const char *arg)
{
	char *field = (char *)run + o->field;
	char flag[40];
	uint64_t v;

	snprintf(flag, sizeof flag, "--%s", o->name);
	switch (o->kind) {
	case CYCLE_OPT_STR:
		*(const char **)field = arg;
		return 0;
	case CYCLE_OPT_SKIP:
		return 0;
	case CYCLE_OPT_FLAG:
		*(bool *)field = true;
		return 0;
	case CYCLE_OPT_UINT:
		if (tool_uint_option("cycle", flag, arg, o->min, o->max, &v) < 0)
			return -1;
		*(unsigned *)field = (unsigned)v * (o->scale ? o->scale : 1u);
		return 0;
	case CYCLE_OPT_U64:
		return tool_uint_option("cycle", flag, arg, o->min, o->max, (uint64_t *)field) < 0 ? -1 : 0;
	case CYCLE_OPT_SIZE:
		if (tool_parse_size(arg, (uint64_t *)field) < 0 || *(uint64_t *)field < o->min ||
		    *(uint64_t *)field > o->max || *(uint64_t *)field % o->multiple) {
			tool_error("cycle", "%s'%s'", o->bad, arg);
			return -1;
		}
		return 0;
	case CYCLE_OPT_FORMAT:
		if (!strcasecmp(arg, "vhd")) {
			*(enum vhdx_format *)field = VHDX_FORMAT_VHD;
		} else if (!strcasecmp(arg, "vhdx")) {
			*(enum vhdx_format *)field = VHDX_FORMAT_VHDX;
		} else {
			tool_error("cycle", "%s takes vhd or vhdx, got '%s'", flag, arg);
			return -1;
		}
		return 0;
	case CYCLE_OPT_HELP:
		break;
	}
	return -1;
}

int cycle_cli_parse(const struct cycle_cli *cli, void *run, int argc, char **argv, int *rc)
{
	struct option longopts[MAX_OPTS + 1];
	char shortopts[MAX_OPTS + 1];
	size_t n = 0, ns = 0;
	int opt;

	for (; cli->opts[n].name && n < MAX_OPTS; n++) {
		const struct cycle_opt *o = &cli->opts[n];
		bool takes_arg = o->kind != CYCLE_OPT_FLAG && o->kind != CYCLE_OPT_HELP;

		longopts[n] = (struct option){ o->name, takes_arg ? required_argument : no_argument, NULL,
					       o->short_name ? o->short_name : OPT_ID(n) };
		if (o->short_name)
			shortopts[ns++] = o->short_name; /* the short ones take no argument */
	}
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
	shortopts[ns] = '\0';
	*rc = EXIT_USAGE;
	optind = 1;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct cycle_opt *o = NULL;

		for (size_t i = 0; i < n && !o; i++)
			if (opt == longopts[i].val)
				o = &cli->opts[i];
		if (!o) {
			cli->usage(stderr);
			return -1;
		}
		if (o->kind == CYCLE_OPT_HELP) {
			cli->help();
			*rc = EXIT_OK;
			return -1;
		}
		if (store_option(o, run, optarg) < 0)
			return -1;
	}
	return 0;
}

int cycle_cli_check(const struct cycle_cli *cli, const char *image, unsigned count, int argc, char **argv)
{
	if (optind < argc) {
		tool_error("cycle", "unexpected argument '%s'", argv[optind]);
		cli->usage(stderr);
		return -1;
	}
	if (!image || !count) { /* --count takes 1 and more: 0 is "not given" */
		tool_error("cycle", "%s needs --%s FILE and --count N", cli->name, cli->image_opt);
		cli->usage(stderr);
		return -1;
	}
	if (tool_faults) {
		tool_error("cycle", "the global --faults does not apply here: use 'vhdx cycle %s --faults RULES'", cli->name);
		return -1;
	}
	return 0;
}

int cycle_setup_rules(const char *faults, uint64_t seed, struct cycle_rules **rules)
{
	int rc;

	if (cycle_rules_load(faults, seed, rules) == 0)
		return EXIT_OK;
	/* a rules file that does not parse is a usage error; a failure to read it, the command's */
	rc = *rules ? EXIT_USAGE : EXIT_ERR;
	cycle_rules_free(*rules);
	*rules = NULL;
	return rc;
}

enum vhdx_format cycle_format_of_name(const char *path)
{
	size_t n = strlen(path);

	return n >= 4 && !strcasecmp(path + n - 4, ".vhd") ? VHDX_FORMAT_VHD : VHDX_FORMAT_VHDX;
}

int cycle_setup_model(const struct cycle_cli *cli, const char *path, bool base_only, struct vhdx_info *info,
		      struct cycle_model **m)
{
	struct vhdx_image *img = NULL;
	struct cycle_check ck = { 0 };
	int ret;

	ret = tool_open_flags(path, 0, NULL, &img);
	if (ret < 0)
		img = NULL;
	if (ret == 0)
		ret = vhdx_get_info(img, info);
	if (ret == 0 && base_only && info->layers != 1) {
		vhdx_close(img);
		tool_error("cycle", "%s is a differencing image: --%s takes the base of a chain", path, cli->image_opt);
		return EXIT_USAGE;
	}
	if (ret == 0) {
		*m = cycle_model_new(info->virtual_size - info->virtual_size % CYCLE_SECTOR);
		ret = *m ? cycle_model_verify(*m, img, true, &ck) : -ENOMEM;
	}
	if (ret < 0) {
		int rc = tool_lib_error("cycle", ret);

		vhdx_close(img);
		return rc;
	}
	vhdx_close(img);
	return EXIT_OK;
}
