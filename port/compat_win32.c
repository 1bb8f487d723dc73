/*
 * compat_win32.c - the POSIX functions a mingw-w64 build lacks, over the
 * Win32 API (declared in port/compat.h; built only for Windows hosts).
 * Paths are UTF-8 in the library and UTF-16 for the *W functions.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <bcrypt.h>

#include "port/compat.h"

int vhdx_compat_errno(unsigned long win32_error)
{
	switch (win32_error) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
	case ERROR_INVALID_DRIVE:
	case ERROR_BAD_NETPATH:
	case ERROR_BAD_PATHNAME:
		return ENOENT;
	case ERROR_ACCESS_DENIED:
	case ERROR_PRIVILEGE_NOT_HELD:
		return EACCES;
	case ERROR_SHARING_VIOLATION:
	case ERROR_LOCK_VIOLATION:
		return EBUSY;
	case ERROR_FILE_EXISTS:
	case ERROR_ALREADY_EXISTS:
		return EEXIST;
	case ERROR_WRITE_PROTECT:
		return EROFS;
	case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL:
		return ENOSPC;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		return ENOMEM;
	case ERROR_INVALID_HANDLE:
		return EBADF;
	case ERROR_HANDLE_EOF:
		return ENODATA;
	case ERROR_FILENAME_EXCED_RANGE:
		return ENAMETOOLONG;
	case ERROR_NOT_SUPPORTED:
	case ERROR_INVALID_FUNCTION:
		return ENOTSUP;
	case ERROR_INVALID_PARAMETER:
	case ERROR_NEGATIVE_SEEK:
	case ERROR_NO_UNICODE_TRANSLATION:
		return EINVAL;
	case ERROR_DIRECTORY:
		return ENOTDIR;
	default:
		return EIO;
	}
}

wchar_t *vhdx_compat_widen(const char *path)
{
	int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
	wchar_t *w;

	if (n <= 0) {
		errno = EINVAL;
		return NULL;
	}
	w = malloc((size_t)n * sizeof *w);
	if (!w) {
		errno = ENOMEM;
		return NULL;
	}
	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, w, n) != n) {
		free(w);
		errno = EINVAL;
		return NULL;
	}
	return w;
}

/* The handle behind a CRT descriptor, or INVALID_HANDLE_VALUE with errno EBADF. */
static HANDLE compat_handle(int fd)
{
	HANDLE h = (HANDLE)_get_osfhandle(fd);

	if (h == INVALID_HANDLE_VALUE)
		errno = EBADF;
	return h;
}

/* One ReadFile/WriteFile is limited to a DWORD; larger requests are short
 * counts, which every caller loops over like a short pread(). */
#define COMPAT_IO_MAX ((size_t)1 << 30)

/* The handle behind FD and *OV set to read or write at OFF (no shared file
 * position), or INVALID_HANDLE_VALUE with errno (EBADF, EINVAL for OFF < 0). */
static HANDLE compat_positioned(int fd, off_t off, OVERLAPPED *ov)
{
	HANDLE h = compat_handle(fd);

	if (h == INVALID_HANDLE_VALUE)
		return h;
	if (off < 0) {
		errno = EINVAL;
		return INVALID_HANDLE_VALUE;
	}
	memset(ov, 0, sizeof *ov);
	ov->Offset = (DWORD)((uint64_t)off & 0xffffffffu);
	ov->OffsetHigh = (DWORD)((uint64_t)off >> 32);
	return h;
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	OVERLAPPED ov;
	HANDLE h = compat_positioned(fd, off, &ov);
	DWORD got = 0;

	if (h == INVALID_HANDLE_VALUE)
		return -1;
	if (!ReadFile(h, buf, (DWORD)(len < COMPAT_IO_MAX ? len : COMPAT_IO_MAX), &got, &ov)) {
		DWORD e = GetLastError();
		if (e == ERROR_HANDLE_EOF)
			return 0;
		errno = vhdx_compat_errno(e);
		return -1;
	}
	return (ssize_t)got;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	OVERLAPPED ov;
	HANDLE h = compat_positioned(fd, off, &ov);
	DWORD put = 0;

	if (h == INVALID_HANDLE_VALUE)
		return -1;
	if (!WriteFile(h, buf, (DWORD)(len < COMPAT_IO_MAX ? len : COMPAT_IO_MAX), &put, &ov)) {
		errno = vhdx_compat_errno(GetLastError());
		return -1;
	}
	return (ssize_t)put;
}

int fsync(int fd)
{
	HANDLE h = compat_handle(fd);

	if (h == INVALID_HANDLE_VALUE)
		return -1;
	if (!FlushFileBuffers(h)) {
		errno = vhdx_compat_errno(GetLastError());
		return -1;
	}
	return 0;
}

int fdatasync(int fd)
{
	return fsync(fd);
}

/* W as a malloc'd UTF-8 string, or NULL with errno. */
static char *compat_narrow(const wchar_t *w)
{
	int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
	char *s;

	if (n <= 0) {
		errno = EINVAL;
		return NULL;
	}
	s = malloc((size_t)n);
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	if (WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) != n) {
		free(s);
		errno = EINVAL;
		return NULL;
	}
	return s;
}

char *realpath(const char *path, char *resolved)
{
	wchar_t *wpath = vhdx_compat_widen(path), *wfull = NULL;
	char *full = NULL;
	DWORD n;

	if (!wpath)
		return NULL;
	/* like realpath(3): the file must exist */
	if (GetFileAttributesW(wpath) == INVALID_FILE_ATTRIBUTES) {
		errno = vhdx_compat_errno(GetLastError());
		goto out;
	}
	n = GetFullPathNameW(wpath, 0, NULL, NULL);
	if (n == 0) {
		errno = vhdx_compat_errno(GetLastError());
		goto out;
	}
	wfull = malloc((size_t)n * sizeof *wfull);
	if (!wfull) {
		errno = ENOMEM;
		goto out;
	}
	if (GetFullPathNameW(wpath, n, wfull, NULL) >= n) {
		errno = EIO;
		goto out;
	}
	full = compat_narrow(wfull);
	/* '/' separators (Windows takes both), so code that splits paths at
	 * '/' (relative parent locators, dirname) works unchanged */
	for (char *q = full; q && *q; q++)
		if (*q == '\\')
			*q = '/';
	if (full && resolved) {
		if (strlen(full) >= PATH_MAX) {
			free(full);
			full = NULL;
			errno = ENAMETOOLONG;
			goto out;
		}
		strcpy(resolved, full);
		free(full);
		full = resolved;
	}
out:
	free(wpath);
	free(wfull);
	return full;
}

char *strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d = malloc(len + 1);

	if (!d) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

/* Whether C matches the bracket expression at *PP ("[...]"); advances *PP
 * past it.  -1 for an unterminated bracket (then '[' is a literal). */
static int compat_bracket(const char **pp, char c)
{
	const char *p = *pp + 1;
	bool neg = false, hit = false;

	if (*p == '!' || *p == '^') {
		neg = true;
		p++;
	}
	for (bool first = true; *p && (first || *p != ']'); first = false) {
		char lo = *p, hi;
		if (lo == '\\' && p[1])
			lo = *++p;
		hi = lo;
		if (p[1] == '-' && p[2] && p[2] != ']') {
			hi = p[2];
			p += 2;
			if (hi == '\\' && p[1])
				hi = *++p;
		}
		if ((unsigned char)c >= (unsigned char)lo && (unsigned char)c <= (unsigned char)hi)
			hit = true;
		p++;
	}
	if (*p != ']')
		return -1;
	*pp = p + 1;
	return hit != neg;
}

int fnmatch(const char *pattern, const char *str, int flags)
{
	const char *p = pattern, *s = str, *star = NULL, *star_s = NULL;

	(void)flags;
	while (*s) {
		if (*p == '*') {
			/* remember the star; first try matching nothing */
			star = ++p;
			star_s = s;
			continue;
		}
		if (*p == '?') {
			p++;
			s++;
			continue;
		}
		if (*p == '[') {
			const char *q = p;
			int m = compat_bracket(&q, *s);
			if (m == 1) {
				p = q;
				s++;
				continue;
			}
			if (m == -1 && *s == '[') {
				p++;
				s++;
				continue;
			}
		} else {
			char lit = *p;
			const char *next = p + 1;
			if (lit == '\\' && p[1]) {
				lit = p[1];
				next = p + 2;
			}
			if (lit && lit == *s) {
				p = next;
				s++;
				continue;
			}
		}
		/* mismatch: let the last star swallow one more character */
		if (!star)
			return FNM_NOMATCH;
		p = star;
		s = ++star_s;
	}
	while (*p == '*')
		p++;
	return *p ? FNM_NOMATCH : 0;
}

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	(void)flags;
	if (len > ULONG_MAX)
		len = ULONG_MAX;
	if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, buf, (ULONG)len, BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
		errno = EIO;
		return -1;
	}
	return (ssize_t)len;
}

#ifndef gmtime_r
struct tm *gmtime_r(const time_t *t, struct tm *tm)
{
	return gmtime_s(tm, t) == 0 ? tm : NULL;
}
#endif

/* Volume serial number and file index of PATH: the Windows twin of
 * (st_dev, st_ino), which mingw's stat() leaves at zero. */
static bool compat_file_id(const char *path, BY_HANDLE_FILE_INFORMATION *info)
{
	wchar_t *w = vhdx_compat_widen(path);
	HANDLE h;
	bool ok;

	if (!w)
		return false;
	/* no access rights needed to read attributes; BACKUP_SEMANTICS opens folders too */
	h = CreateFileW(w, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
			FILE_FLAG_BACKUP_SEMANTICS, NULL);
	free(w);
	if (h == INVALID_HANDLE_VALUE)
		return false;
	ok = GetFileInformationByHandle(h, info) != 0;
	CloseHandle(h);
	return ok;
}

bool vhdx_same_file(const char *a, const char *b)
{
	BY_HANDLE_FILE_INFORMATION ia, ib;

	return compat_file_id(a, &ia) && compat_file_id(b, &ib) &&
	       ia.dwVolumeSerialNumber == ib.dwVolumeSerialNumber && ia.nFileIndexHigh == ib.nFileIndexHigh &&
	       ia.nFileIndexLow == ib.nFileIndexLow;
}

int vhdx_sync_dir(const char *dir)
{
	wchar_t *w = vhdx_compat_widen(dir);
	DWORD attr;

	if (!w)
		return -1;
	attr = GetFileAttributesW(w);
	free(w);
	if (attr == INVALID_FILE_ATTRIBUTES) {
		errno = vhdx_compat_errno(GetLastError());
		return -1;
	}
	if (!(attr & FILE_ATTRIBUTE_DIRECTORY)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int sigemptyset(_sigset_t *set)
{
	*set = 0;
	return 0;
}

int sigaction(int sig, const struct sigaction *sa, struct sigaction *old)
{
	void (*prev)(int);

	if (!sa) {
		/* query only: signal() cannot read without setting, so set and restore */
		prev = signal(sig, SIG_DFL);
		if (prev == SIG_ERR) {
			errno = EINVAL;
			return -1;
		}
		signal(sig, prev);
	} else {
		prev = signal(sig, sa->sa_handler);
		if (prev == SIG_ERR) {
			errno = EINVAL;
			return -1;
		}
	}
	if (old) {
		memset(old, 0, sizeof *old);
		old->sa_handler = prev;
	}
	return 0;
}

int posix_memalign(void **p, size_t align, size_t size)
{
	(void)align;
	*p = malloc(size ? size : 1);
	return *p ? 0 : ENOMEM;
}
