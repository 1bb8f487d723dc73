/*
 * compat.h - the one place for portability glue.  The library and the
 * tools are written against POSIX (Linux); this header supplies what a
 * Windows (mingw-w64) build lacks, so that the rest of the code needs no
 * #ifdef of its own.  It sits below the library (port/, beside it): the
 * library's base/base.h includes it, so every library file sees it, and
 * tools/tool.h includes it for the tools.
 *
 * On POSIX systems it only adds two small helpers whose Linux versions are
 * the code they replaced (vhdx_same_file, vhdx_sync_dir).  On Windows it
 * declares POSIX-named replacements (pread, pwrite, fsync, fdatasync,
 * realpath, strndup, fnmatch, getrandom, gmtime_r) implemented in
 * port/compat_win32.c over the Win32 API; they are real functions, never
 * macros, so that struct members with the same names (io->m->pread) are
 * untouched.  The file backend for Windows is libvhdx/io/file_win32.c (chosen by
 * Makefile.am instead of io/file.c).
 */
#ifndef VHDX_PORT_COMPAT_H
#define VHDX_PORT_COMPAT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#if defined(_WIN32)

#include <fcntl.h>
#include <io.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

/*
 * configure defines __USE_MINGW_ANSI_STDIO, so printf and friends are
 * mingw's C99 ones (%zu, %llu, %hhx work); the compiler must check formats
 * against those, not against msvcrt's.
 */
#define VHDX_PRINTF_ARCHETYPE gnu_printf

/*
 * Every open() in the code carries O_CLOEXEC, and every file it opens
 * holds binary data: on Windows the flag becomes "not inherited, binary
 * mode" (the CRT's default text mode would rewrite \n bytes).
 */
#undef O_CLOEXEC
#define O_CLOEXEC (_O_NOINHERIT | _O_BINARY)

/* Linux errno values the fault rules and reports name but the CRT lacks:
 * distinct numbers above the CRT's range (strerror says "Unknown error"). */
#ifndef EDQUOT
#define EDQUOT 201
#endif
#ifndef ESTALE
#define ESTALE 202
#endif
#ifndef EREMOTEIO
#define EREMOTEIO 203
#endif
#ifndef ESHUTDOWN
#define ESHUTDOWN 204
#endif
#ifndef EHOSTDOWN
#define EHOSTDOWN 205
#endif
#ifndef ENOMEDIUM
#define ENOMEDIUM 206
#endif
#ifndef EMEDIUMTYPE
#define EMEDIUMTYPE 207
#endif
#ifndef EUCLEAN
#define EUCLEAN 208
#endif

/* No sparse-file seeking in the CRT: lseek() refuses these with EINVAL,
 * which callers already take as "every byte is data". */
#ifndef SEEK_DATA
#define SEEK_DATA 3
#define SEEK_HOLE 4
#endif

/* sigaction() over signal(): only sa_handler is honoured (SIGINT, SIGTERM). */
struct sigaction {
	void (*sa_handler)(int);
	_sigset_t sa_mask;
	int sa_flags;
};
int sigemptyset(_sigset_t *set);
int sigaction(int sig, const struct sigaction *sa, struct sigaction *old);

/** malloc() that ignores ALIGN: memory from posix_memalign must be freeable
 * with free(), which the CRT's aligned allocator is not.  The tools ask for
 * page alignment only for O_DIRECT, which Windows builds never use. */
int posix_memalign(void **p, size_t align, size_t size);

/** pread/pwrite on a CRT descriptor: ReadFile/WriteFile with an OVERLAPPED
 * offset, so no shared file position is used.  -1 with errno on error;
 * pread returns 0 at the end of the file. */
ssize_t pread(int fd, void *buf, size_t len, off_t off);
ssize_t pwrite(int fd, const void *buf, size_t len, off_t off);
/** FlushFileBuffers on the descriptor's handle.  0 or -1 with errno. */
int fsync(int fd);
int fdatasync(int fd);
/** The absolute path of an existing PATH (GetFullPathNameW; UTF-8 in and
 * out; '/' separators, "C:/dir/file").  RESOLVED holds PATH_MAX bytes, or NULL for a malloc'd result.
 * NULL with errno (ENOENT when PATH does not exist). */
char *realpath(const char *path, char *resolved);
/** A malloc'd copy of at most N bytes of S.  NULL with errno ENOMEM. */
char *strndup(const char *s, size_t n);
/** Shell-style match of STR against PATTERN (*, ?, [set], [!set], \\
 * escapes); FLAGS must be 0.  0 on a match, FNM_NOMATCH otherwise. */
#define FNM_NOMATCH 1
int fnmatch(const char *pattern, const char *str, int flags);
/** LEN random bytes from BCryptGenRandom.  LEN or -1 with errno. */
#define VHDX_HAVE_GETRANDOM 1
ssize_t getrandom(void *buf, size_t len, unsigned int flags);
#ifndef gmtime_r
/** gmtime_s with the POSIX argument order.  TM or NULL. */
struct tm *gmtime_r(const time_t *t, struct tm *tm);
#endif

/** The errno value closest to a Win32 error code (GetLastError()). */
int vhdx_compat_errno(unsigned long win32_error);
/** PATH (UTF-8) as a malloc'd UTF-16 string for the *W functions, or NULL
 * with errno (EINVAL for invalid UTF-8, ENOMEM). */
wchar_t *vhdx_compat_widen(const char *path);

/** Whether A and B name the same file (volume serial number and file
 * index); false when either cannot be opened. */
bool vhdx_same_file(const char *a, const char *b);
/** Makes names created or removed in folder DIR durable.  NTFS journals
 * its metadata and a folder cannot be flushed through a descriptor, so
 * this only checks that DIR exists.  0 or -1 with errno. */
int vhdx_sync_dir(const char *dir);

#else /* POSIX */

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#define VHDX_HAVE_GETRANDOM 1
#endif

#define VHDX_PRINTF_ARCHETYPE printf

/* Same file (device + inode), for cycle detection and merge checks. */
static inline bool vhdx_same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* fsync of folder DIR, so that a created or removed name in it is durable.
 * 0 or -1 with errno. */
static inline int vhdx_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY), ret;

	if (fd < 0)
		return -1;
	ret = fsync(fd);
	if (ret < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

#endif /* _WIN32 */

#endif /* VHDX_PORT_COMPAT_H */
