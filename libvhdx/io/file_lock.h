/*
 * file_lock.h - the lock primitives of the POSIX file backend (file_lock.c),
 * used by io/file.c for its lock and lock_test methods (io.h).
 */
#ifndef VHDX_IO_FILE_LOCK_H
#define VHDX_IO_FILE_LOCK_H

#include "io/io.h"

/**
 * Takes MODE (or drops, NONE) on FD's open file without waiting: an OFD
 * lock on Linux, flock() elsewhere.  -EBUSY with *HELD (mode, pid, cmd as
 * far as known) on a conflict; other -errno with a message.
 */
int vhdx_file_lock(int fd, enum vhdx_lock_mode mode, struct vhdx_lock_holder *held);
/**
 * What other opens of FD's file hold (*HELD->mode), OWN being FD's own
 * lock.  0, or -ENOTSUP when the system cannot tell.
 */
int vhdx_file_lock_test(int fd, enum vhdx_lock_mode own, struct vhdx_lock_holder *held);

#endif
