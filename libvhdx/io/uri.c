/*
 * uri.c - image names that are NBD URIs rather than paths: telling them
 * apart, opening either through the right backend, and resolving a
 * parent's relative locator path against a URI.
 *
 * An NBD URI (scheme://[AUTHORITY]/EXPORT[?QUERY]) names an export on a
 * server.  A relative parent locator of an image opened by URI names an
 * export of the same server: the locator path is taken against the
 * "folder" of the child's export name (its part up to the last '/', empty
 * for the usual flat names of `nbdkit file dir=FOLDER`), and the server
 * part and query (socket=, tls=...) are kept, so a VM folder served by
 * nbdkit opens its chains as the folder does locally.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/io.h"

static const char *const uri_schemes[] = {
	"nbd://", "nbds://", "nbd+unix://", "nbds+unix://", "nbd+vsock://", "nbds+vsock://",
};

bool vhdx_io_is_uri(const char *path)
{
	for (size_t i = 0; path && i < sizeof uri_schemes / sizeof uri_schemes[0]; i++)
		if (!strncmp(path, uri_schemes[i], strlen(uri_schemes[i])))
			return true;
	return false;
}

int vhdx_io_open_path(const char *path, bool writable, struct vhdx_io **out)
{
	if (vhdx_io_is_uri(path))
		return vhdx_io_nbd_open(path, writable, out);
	return vhdx_io_file_open(path, writable, out);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes [S, S+N) into a new string, or NULL. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = 0;
	return out;
}

/* Appends NAME percent-encoded (all but unreserved characters and '/') to OUT[*LEN..]. */
static void pct_encode(char *out, size_t *len, const char *name)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~/", *p)) {
			out[(*len)++] = (char)*p;
		} else {
			out[(*len)++] = '%';
			out[(*len)++] = hex[*p >> 4];
			out[(*len)++] = hex[*p & 15];
		}
	}
	out[*len] = 0;
}

char *vhdx_io_uri_resolve(const char *uri, const char *rel, bool uri_is_folder)
{
	const char *auth, *path, *query;
	char *export, *name, *out, *r;
	size_t dirlen, n;

	if (!vhdx_io_is_uri(uri) || !rel || !*rel)
		return NULL;
	/* a Windows or POSIX absolute path is not relative to anything */
	if (rel[0] == '\\' || rel[0] == '/' || (rel[0] && rel[1] == ':'))
		return NULL;
	auth = strstr(uri, "://") + 3;
	path = auth + strcspn(auth, "/?#");
	query = path + strcspn(path, "?#");
	export = pct_decode(*path == '/' ? path + 1 : path, (size_t)(query - path) - (*path == '/'));
	r = strdup(rel);
	if (!export || !r)
		goto nomem;
	/* the export's folder: all of it when it names a folder, else up to its last '/' */
	dirlen = strlen(export);
	if (!uri_is_folder) {
		char *slash = strrchr(export, '/');
		dirlen = slash ? (size_t)(slash - export) : 0;
	}
	export[dirlen] = 0;
	for (char *p = r; *p; p++)
		if (*p == '\\')
			*p = '/';
	name = malloc(strlen(export) + strlen(r) + 2);
	if (!name)
		goto nomem;
	strcpy(name, export);
	for (char *tok = r; tok;) {
		char *next = strchr(tok, '/');
		if (next)
			*next++ = 0;
		if (!*tok || !strcmp(tok, ".")) {
			tok = next;
			continue;
		}
		if (!strcmp(tok, "..")) {
			char *slash = strrchr(name, '/');
			if (!*name) {
				/* above the server's top: no such export */
				free(name);
				free(export);
				free(r);
				return NULL;
			}
			if (slash)
				*slash = 0;
			else
				*name = 0;
			tok = next;
			continue;
		}
		if (*name)
			strcat(name, "/");
		strcat(name, tok);
		tok = next;
	}
	n = (size_t)(path - uri) + 1 + strlen(name) * 3 + strlen(query) + 1;
	out = malloc(n);
	if (out) {
		size_t len = (size_t)(path - uri);
		memcpy(out, uri, len);
		out[len++] = '/';
		pct_encode(out, &len, name);
		strcpy(out + len, query);
	}
	free(name);
	free(export);
	free(r);
	return out;
nomem:
	free(export);
	free(r);
	return NULL;
}
