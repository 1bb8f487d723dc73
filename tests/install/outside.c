/*
 * outside.c - a program written the way a user of the installed library
 * writes one: only <libvhdx.h>, built with `pkg-config --cflags --libs
 * libvhdx` by tests/test-install.sh (never by this tree's Makefile).
 *
 * Usage: outside IMAGE OUT
 * Prints "virtual_size=N layers=N" and writes the whole virtual disk to OUT
 * (read in odd-sized pieces, to exercise unaligned vhdx_pread calls).
 */
#include <libvhdx.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct vhdx_open_options opts;
	struct vhdx_info info;
	struct vhdx_image *img;
	static unsigned char buf[65536 + 511];
	uint64_t off;
	FILE *out;
	int r;

	if (argc != 3) {
		fprintf(stderr, "usage: outside IMAGE OUT\n");
		return 2;
	}
	vhdx_open_options_init(&opts);
	r = vhdx_open(argv[1], &opts, &img);
	if (r < 0) {
		fprintf(stderr, "outside: %s: %s (%s)\n", argv[1], vhdx_errmsg(), strerror(-r));
		return 1;
	}
	memset(&info, 0, sizeof(info));
	info.struct_size = sizeof(info);
	r = vhdx_get_info(img, &info);
	if (r < 0) {
		fprintf(stderr, "outside: vhdx_get_info: %s\n", vhdx_errmsg());
		return 1;
	}
	printf("virtual_size=%llu layers=%u version=%s\n", (unsigned long long)info.virtual_size,
	       info.layers, vhdx_version());
	out = fopen(argv[2], "wb");
	if (!out) {
		perror(argv[2]);
		return 1;
	}
	for (off = 0; off < info.virtual_size;) {
		ssize_t n = vhdx_pread(img, buf, sizeof(buf), off);
		if (n <= 0) {
			fprintf(stderr, "outside: vhdx_pread at %llu: %s\n", (unsigned long long)off,
				n < 0 ? vhdx_errmsg() : "unexpected end of disk");
			return 1;
		}
		if (fwrite(buf, 1, (size_t)n, out) != (size_t)n) {
			perror(argv[2]);
			return 1;
		}
		off += (uint64_t)n;
	}
	if (fclose(out) != 0) {
		perror(argv[2]);
		return 1;
	}
	return vhdx_close(img) < 0 ? 1 : 0;
}
