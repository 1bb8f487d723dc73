/*
 * mount.h - `vhdx mount IMAGE DIR` and `vhdx umount DIR` (cmd_mount.c) and
 * what they ask of the system (mount_sys.c).
 *
 * Layout of a mounted DIR:
 *   DIR/.disk        vhdxfs (mode 0700): DIR/.disk/disk, DIR/.disk/p1, ...
 *   DIR/pN           the file system of partition N (ntfs-3g on the
 *                    partition file, or the kernel's driver on a loop
 *                    device over it)
 *   DIR/disk         a file system on the whole disk (no partition table)
 */
#ifndef VHDX_TOOL_MOUNT_H
#define VHDX_TOOL_MOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tool.h"

#define MNT_DISK_DIR ".disk"
/* DIR/.disk.close: vhdxfs writes there how closing the image went (-o close-status); vhdx umount reads it */
#define MNT_CLOSE_FILE ".disk.close"

/** The whole contents of PATH, NUL-terminated (*LEN: bytes before it; may be NULL), or NULL with errno. */
char *mnt_read_all(const char *path, size_t *len);

/** Sleeps MS milliseconds. */
void mnt_sleep_ms(unsigned ms);

/**
 * Runs ARGV (searched in PATH) with stdin /dev/null; its stdout and stderr
 * together (their first paragraph), newlines as ';', into *OUT (malloc'd; OUT may be NULL).  The
 * exit status (128 + signal when killed), or -errno when it cannot start.
 */
int mnt_run(char *const *argv, char **out);

struct mnt_entry {
	int id;          /* mount id: later mounts have larger ones */
	char *target;    /* mount point */
	char *fstype;    /* "fuse.vhdxfs", "ext4", "fuseblk" (ntfs-3g), ... */
	char *source;
};
/** The mounts whose mount point is a direct child of DIR, in mountinfo order.  0 or -errno. */
int mnt_list(const char *dir, struct mnt_entry **out, size_t *n);
void mnt_list_free(struct mnt_entry *m, size_t n);
/** True when TARGET (absolute, canonical) is a mount point. */
bool mnt_is_mounted(const char *target);

/** Loop devices ("/dev/loopN") whose backing file starts with PREFIX, with those files.  0. */
int mnt_loops(const char *prefix, char ***devs, char ***files, size_t *n);

/**
 * Processes holding anything under DIR (cwd, root, executable, an open
 * file, a memory map), other than this process and the FUSE daemons
 * serving DIR: their number, and *REPORT = "PID 123 (bash) cwd DIR/p1; ..."
 * (malloc'd, NULL when none).  -errno when /proc cannot be read.
 */
int mnt_holders(const char *dir, char **report);

/** The pid of a process named NAME (comm) with PATH among its arguments, or 0. */
pid_t mnt_daemon_pid(const char *name, const char *path);

/**
 * Unmounts the FUSE mount TARGET with fusermount3 -u, tried again for 2 s
 * while a daemon of a file system above lets go of it.  0, or -1 with
 * fusermount3's words in *OUT (malloc'd; OUT may be NULL).
 */
int mnt_fuse_unmount(const char *target, char **out);

/**
 * Waits up to 30 s for process PID (0: none) to end: a FUSE daemon closes,
 * flushes and unlocks its image only after its unmount, so a next open
 * before that finds the image in use.  True when it has ended.
 */
bool mnt_wait_exit(pid_t pid);

#endif
