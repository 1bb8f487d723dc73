/*
 * _pyvhdx.c - the C part of the pyvhdx package: a handle on an opened
 * image (struct vhdx_image) with positional reads and writes that release
 * the GIL, the map, info and the exceptions.  Only libvhdx.h and the
 * CPython API are used.  The Python part (pyvhdx/__init__.py) builds the
 * io.RawIOBase image, the options and the parent sources on top of it.
 *
 * Sources: an image given by path opens with vhdx_open().  One given as a
 * Python file object opens with vhdx_open_io() over callbacks that take
 * the GIL and seek+read the object (VHDX_IO_SERIALIZE: one call at a
 * time, since the object has one offset).  A parent given by path inside
 * such an open becomes a descriptor source read with pread() without the
 * GIL.
 *
 * Lifetime: every call that uses the image takes the handle's lock for
 * reading (and releases the GIL while libvhdx works); close() takes it for
 * writing, so a close from one thread waits for reads in flight on others.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvhdx.h>

/* ---------------------------------------------------------------- errors */

static PyObject *Error, *MissingParentError, *CorruptImageError, *ImageInUseError;

/* Raises the exception for -ERR with the library's MESSAGE (or strerror). */
static PyObject *raise_vhdx(int err, const char *message)
{
	PyObject *cls = Error, *exc;
	const char *m = message && *message ? message : strerror(err);

	if (err == ENOENT && strstr(m, "parent"))
		cls = MissingParentError;
	else if (err == EBADMSG)
		cls = CorruptImageError;
	else if (err == EBUSY)
		cls = ImageInUseError;
	exc = PyObject_CallFunction(cls, "is", err, m);
	if (exc) {
		PyErr_SetObject(cls, exc);
		Py_DECREF(exc);
	}
	return NULL;
}

/* Raises for RET (a -errno) with the calling thread's libvhdx message; keeps a Python exception already set. */
static PyObject *raise_ret(int ret)
{
	if (PyErr_Occurred())
		return NULL;
	return raise_vhdx(-ret, vhdx_errmsg());
}

/* ---------------------------------------------------------------- sources */

/*
 * A Python file object as a source.  The callbacks run on whatever thread
 * libvhdx reads from, with the GIL released there, so each takes it.  A
 * Python exception raised by the object is kept (first one wins) and
 * re-raised by the call that failed.
 */
struct pysrc {
	PyObject *file;       /* the file object (owned) */
	PyObject *open_parent; /* callable(request dict) -> source or None, or NULL (owned) */
	uint64_t size;
	int has_readinto;
	struct vhdx_io_callbacks cb;
	char *name;
};

/*
 * One lock for every file-object source: two sources may share one Python
 * object (an image and, through set_parent, its child's chain), and a
 * seek+read pair must not interleave with another even where the object's
 * read releases the GIL.  Taken before the GIL (callbacks run on threads
 * that do not hold it), never while holding it.
 */
static pthread_mutex_t pyio_lock = PTHREAD_MUTEX_INITIALIZER;

static PyGILState_STATE pyio_enter(void)
{
	pthread_mutex_lock(&pyio_lock);
	return PyGILState_Ensure();
}

static void pyio_leave(PyGILState_STATE g)
{
	PyGILState_Release(g);
	pthread_mutex_unlock(&pyio_lock);
}

/* A descriptor as a source (a parent given by path): pread without the GIL. */
struct fdsrc {
	int fd;
	PyObject *open_parent; /* owned, or NULL */
	struct vhdx_io_callbacks cb;
	char *name;
};

static int source_from_object(PyObject *obj, PyObject *open_parent, const struct vhdx_io_callbacks **cb,
			      void **opaque);

/*
 * Turns the current Python exception into the libvhdx message of this call
 * and returns -errno: the OSError's errno when it is one, else -EIO.
 */
static int pysrc_fail(const char *what)
{
	PyObject *type, *value, *tb, *msg = NULL;
	const char *text = NULL;
	int err = EIO;

	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	if (value && PyErr_GivenExceptionMatches(value, PyExc_OSError)) {
		PyObject *e = PyObject_GetAttrString(value, "errno");
		if (e && PyLong_Check(e)) {
			long v = PyLong_AsLong(e);
			if (v > 0 && v < 4096)
				err = (int)v;
		}
		Py_XDECREF(e);
		PyErr_Clear();
	}
	if (value)
		msg = PyObject_Str(value);
	if (msg)
		text = PyUnicode_AsUTF8(msg);
	if (!text)
		PyErr_Clear();
	vhdx_set_errmsg(err, "%s raised %s: %s", what, type ? ((PyTypeObject *)type)->tp_name : "an exception",
			text ? text : "?");
	Py_XDECREF(msg);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
	return -err;
}

static ssize_t pysrc_pread(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct pysrc *s = opaque;
	PyGILState_STATE g = pyio_enter();
	PyObject *r;
	ssize_t n = 0;

	if (off >= s->size) {
		pyio_leave(g);
		return 0;
	}
	if (len > s->size - off)
		len = (size_t)(s->size - off);
	r = PyObject_CallMethod(s->file, "seek", "K", (unsigned long long)off);
	if (!r) {
		n = pysrc_fail("seek()");
		goto out;
	}
	Py_DECREF(r);
	if (s->has_readinto) {
		PyObject *mv = PyMemoryView_FromMemory(buf, (Py_ssize_t)len, PyBUF_WRITE);
		if (!mv) {
			n = pysrc_fail("memoryview");
			goto out;
		}
		r = PyObject_CallMethod(s->file, "readinto", "O", mv);
		{
			/* the memory is libvhdx's: no view of it may outlive the call */
			PyObject *rel;
			PyObject *type, *value, *tb;
			PyErr_Fetch(&type, &value, &tb);
			rel = PyObject_CallMethod(mv, "release", NULL);
			if (!rel)
				PyErr_Clear();
			Py_XDECREF(rel);
			PyErr_Restore(type, value, tb);
		}
		Py_DECREF(mv);
		if (!r) {
			n = pysrc_fail("readinto()");
			goto out;
		}
		n = r == Py_None ? -EAGAIN : (ssize_t)PyLong_AsSsize_t(r);
		Py_DECREF(r);
		if (n == -1 && PyErr_Occurred())
			n = pysrc_fail("readinto()");
		else if (n < 0 || (size_t)n > len)
			n = vhdx_set_errmsg(EIO, "readinto() returned %zd for a %zu-byte buffer", n, len);
	} else {
		Py_buffer view;
		r = PyObject_CallMethod(s->file, "read", "n", (Py_ssize_t)len);
		if (!r) {
			n = pysrc_fail("read()");
			goto out;
		}
		if (PyObject_GetBuffer(r, &view, PyBUF_SIMPLE) < 0) {
			Py_DECREF(r);
			n = pysrc_fail("read()");
			goto out;
		}
		if ((size_t)view.len > len) {
			n = vhdx_set_errmsg(EIO, "read(%zu) returned %zd bytes", len, view.len);
		} else {
			memcpy(buf, view.buf, (size_t)view.len);
			n = view.len;
		}
		PyBuffer_Release(&view);
		Py_DECREF(r);
	}
out:
	pyio_leave(g);
	return n;
}

static ssize_t pysrc_pwrite(void *opaque, const void *buf, size_t len, uint64_t off)
{
	struct pysrc *s = opaque;
	PyGILState_STATE g = pyio_enter();
	PyObject *r, *mv;
	ssize_t n;

	r = PyObject_CallMethod(s->file, "seek", "K", (unsigned long long)off);
	if (!r) {
		n = pysrc_fail("seek()");
		goto out;
	}
	Py_DECREF(r);
	mv = PyMemoryView_FromMemory((char *)buf, (Py_ssize_t)len, PyBUF_READ);
	r = mv ? PyObject_CallMethod(s->file, "write", "O", mv) : NULL;
	Py_XDECREF(mv);
	if (!r) {
		n = pysrc_fail("write()");
		goto out;
	}
	n = r == Py_None ? (ssize_t)len : PyLong_AsSsize_t(r);
	Py_DECREF(r);
	if (n == -1 && PyErr_Occurred())
		n = pysrc_fail("write()");
	else if (off + (uint64_t)n > s->size)
		s->size = off + (uint64_t)n;
out:
	pyio_leave(g);
	return n;
}

static int pysrc_flush(void *opaque)
{
	struct pysrc *s = opaque;
	PyGILState_STATE g = pyio_enter();
	PyObject *r = PyObject_CallMethod(s->file, "flush", NULL);
	int ret = 0;

	if (!r)
		ret = pysrc_fail("flush()");
	Py_XDECREF(r);
	pyio_leave(g);
	return ret;
}

static int pysrc_get_size(void *opaque, uint64_t *size)
{
	*size = ((struct pysrc *)opaque)->size;
	return 0;
}

static void pysrc_close(void *opaque)
{
	struct pysrc *s = opaque;
	PyGILState_STATE g = PyGILState_Ensure();

	Py_XDECREF(s->file);
	Py_XDECREF(s->open_parent);
	PyMem_RawFree(s->name);
	PyMem_RawFree(s);
	PyGILState_Release(g);
}

/* Builds the request dict given to a Python open_parent callable. */
static PyObject *request_dict(const struct vhdx_parent_request *req)
{
	static const char hex[] = "0123456789abcdef";
	PyObject *d = PyDict_New(), *entries = PyList_New(0), *v;
	const uint8_t *g = req->linkage;
	char guid[37];
	int k = 0;

	if (!d || !entries)
		goto fail;
	/* the same text as libvhdx prints: first three fields little-endian */
	{
		static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
		for (int i = 0; i < 16; i++) {
			if (i == 4 || i == 6 || i == 8 || i == 10)
				guid[k++] = '-';
			guid[k++] = hex[g[order[i]] >> 4];
			guid[k++] = hex[g[order[i]] & 15];
		}
		guid[k] = '\0';
	}
	for (size_t i = 0; i < req->n_entries; i++) {
		v = Py_BuildValue("(ss)", req->entries[i].key, req->entries[i].value);
		if (!v || PyList_Append(entries, v) < 0) {
			Py_XDECREF(v);
			goto fail;
		}
		Py_DECREF(v);
	}
	v = Py_BuildValue("{s:s,s:I,s:s,s:s,s:O}", "child", req->child_name, "depth", req->depth, "format",
			  req->format == VHDX_FORMAT_VHD ? "vhd" : "vhdx", "linkage", guid, "entries", entries);
	if (!v)
		goto fail;
	Py_DECREF(d);
	Py_DECREF(entries);
	return v;
fail:
	Py_XDECREF(d);
	Py_XDECREF(entries);
	return NULL;
}

/* Shared by both kinds of source: asks the Python callable OPEN_PARENT, under the GIL. */
static int call_open_parent(PyObject *open_parent, const struct vhdx_parent_request *req,
			    const struct vhdx_io_callbacks **cb, void **parent_opaque)
{
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *d, *r = NULL;
	int ret;

	if (!open_parent) {
		PyGILState_Release(g);
		return vhdx_set_errmsg(ENOENT, "no parent was given for a file-object image (use parent=)");
	}
	d = request_dict(req);
	if (d)
		r = PyObject_CallFunctionObjArgs(open_parent, d, NULL);
	Py_XDECREF(d);
	if (!r) {
		ret = pysrc_fail("the parent callable");
	} else if (r == Py_None) {
		ret = vhdx_set_errmsg(ENOENT, "the parent callable returned None");
	} else {
		/* the parent's own parent comes from the same callable */
		ret = source_from_object(r, open_parent, cb, parent_opaque);
		if (ret < 0) {
			ret = pysrc_fail("opening the parent source");
		}
	}
	Py_XDECREF(r);
	PyGILState_Release(g);
	return ret;
}

static int pysrc_open_parent(void *opaque, const struct vhdx_parent_request *req, const struct vhdx_io_callbacks **cb,
			     void **parent_opaque)
{
	return call_open_parent(((struct pysrc *)opaque)->open_parent, req, cb, parent_opaque);
}

static ssize_t fdsrc_pread(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct fdsrc *s = opaque;
	ssize_t n;

	do
		n = pread(s->fd, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	return n < 0 ? vhdx_set_errmsg(errno, "%s: %s", s->name, strerror(errno)) : n;
}

static int fdsrc_get_size(void *opaque, uint64_t *size)
{
	struct fdsrc *s = opaque;
	struct stat st;

	if (fstat(s->fd, &st) < 0)
		return vhdx_set_errmsg(errno, "%s: %s", s->name, strerror(errno));
	*size = (uint64_t)st.st_size;
	return 0;
}

static void fdsrc_close(void *opaque)
{
	struct fdsrc *s = opaque;

	close(s->fd);
	if (s->open_parent) {
		PyGILState_STATE g = PyGILState_Ensure();
		Py_DECREF(s->open_parent);
		PyGILState_Release(g);
	}
	PyMem_RawFree(s->name);
	PyMem_RawFree(s);
}

static int fdsrc_open_parent(void *opaque, const struct vhdx_parent_request *req, const struct vhdx_io_callbacks **cb,
			     void **parent_opaque)
{
	return call_open_parent(((struct fdsrc *)opaque)->open_parent, req, cb, parent_opaque);
}

static char *dup_raw(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = PyMem_RawMalloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

/*
 * Makes a source of OBJ (a path: str, bytes or os.PathLike; or a file
 * object with read and seek) whose parents come from OPEN_PARENT (may be
 * NULL).  Holds the GIL.  0, or -1 with a Python exception set.
 */
static int source_from_object(PyObject *obj, PyObject *open_parent, const struct vhdx_io_callbacks **cb,
			      void **opaque)
{
	PyObject *bytes = NULL, *r;

	if (PyUnicode_Check(obj) || PyBytes_Check(obj) || PyObject_HasAttrString(obj, "__fspath__")) {
		struct fdsrc *s;
		const char *path;
		int fd;

		if (!PyUnicode_FSConverter(obj, &bytes))
			return -1;
		path = PyBytes_AS_STRING(bytes);
		Py_BEGIN_ALLOW_THREADS
		fd = open(path, O_RDONLY | O_CLOEXEC);
		Py_END_ALLOW_THREADS
		if (fd < 0) {
			PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, obj);
			Py_DECREF(bytes);
			return -1;
		}
		s = PyMem_RawCalloc(1, sizeof *s);
		if (!s || !(s->name = dup_raw(path))) {
			PyMem_RawFree(s);
			close(fd);
			Py_DECREF(bytes);
			PyErr_NoMemory();
			return -1;
		}
		Py_DECREF(bytes);
		s->fd = fd;
		s->open_parent = open_parent;
		Py_XINCREF(open_parent);
		s->cb.struct_size = sizeof s->cb;
		s->cb.name = s->name;
		s->cb.pread = fdsrc_pread;
		s->cb.get_size = fdsrc_get_size;
		s->cb.close = fdsrc_close;
		s->cb.open_parent = open_parent ? fdsrc_open_parent : NULL;
		*cb = &s->cb;
		*opaque = s;
		return 0;
	}
	if (!PyObject_HasAttrString(obj, "read") || !PyObject_HasAttrString(obj, "seek")) {
		PyErr_Format(PyExc_TypeError, "a source is a path or a file object with read() and seek(), not %.100s",
			     Py_TYPE(obj)->tp_name);
		return -1;
	}
	{
		struct pysrc *s = PyMem_RawCalloc(1, sizeof *s);
		PyObject *name;
		const char *n = NULL;
		unsigned long long size;

		if (!s) {
			PyErr_NoMemory();
			return -1;
		}
		r = PyObject_CallMethod(obj, "seek", "ii", 0, 2);
		if (r == Py_None) {
			/* a seek() that returns nothing: ask tell() where the end is */
			Py_DECREF(r);
			r = PyObject_CallMethod(obj, "tell", NULL);
		}
		if (!r) {
			PyMem_RawFree(s);
			return -1;
		}
		size = PyLong_AsUnsignedLongLong(r);
		Py_DECREF(r);
		if (size == (unsigned long long)-1 && PyErr_Occurred()) {
			PyMem_RawFree(s);
			return -1;
		}
		/* a label for messages: the object's name when it has one */
		name = PyObject_GetAttrString(obj, "name");
		if (name && PyUnicode_Check(name))
			n = PyUnicode_AsUTF8(name);
		if (!n) {
			PyErr_Clear();
			Py_XDECREF(name);
			name = PyUnicode_FromFormat("<%s object>", Py_TYPE(obj)->tp_name);
			n = name ? PyUnicode_AsUTF8(name) : NULL;
		}
		s->name = dup_raw(n ? n : "(file object)");
		Py_XDECREF(name);
		PyErr_Clear();
		if (!s->name) {
			PyMem_RawFree(s);
			PyErr_NoMemory();
			return -1;
		}
		s->size = size;
		s->file = obj;
		Py_INCREF(obj);
		s->open_parent = open_parent;
		Py_XINCREF(open_parent);
		s->has_readinto = PyObject_HasAttrString(obj, "readinto");
		s->cb.struct_size = sizeof s->cb;
		s->cb.flags = VHDX_IO_SERIALIZE; /* one seek offset: one call at a time */
		s->cb.name = s->name;
		s->cb.pread = pysrc_pread;
		s->cb.get_size = pysrc_get_size;
		if (PyObject_HasAttrString(obj, "write"))
			s->cb.pwrite = pysrc_pwrite;
		if (PyObject_HasAttrString(obj, "flush"))
			s->cb.flush = pysrc_flush;
		s->cb.close = pysrc_close;
		/* without a callable, libvhdx searches parents as files from the object's name */
		s->cb.open_parent = open_parent ? pysrc_open_parent : NULL;
		*cb = &s->cb;
		*opaque = s;
		return 0;
	}
}

/* ---------------------------------------------------------------- the handle */

typedef struct {
	PyObject_HEAD
	struct vhdx_image *img;
	uint64_t size;         /* of the virtual disk: pread allocates no more than it can return */
	pthread_rwlock_t lock; /* read: a call using img; write: close */
} Handle;

static PyTypeObject HandleType;

/* Takes the handle for a call (GIL held on entry and exit). 0, or -1 with ValueError when closed. */
static int handle_enter(Handle *h)
{
	/* never wait for the lock holding the GIL: a close in flight may need it */
	if (pthread_rwlock_tryrdlock(&h->lock) != 0) {
		Py_BEGIN_ALLOW_THREADS
		pthread_rwlock_rdlock(&h->lock);
		Py_END_ALLOW_THREADS
	}
	if (!h->img) {
		pthread_rwlock_unlock(&h->lock);
		PyErr_SetString(PyExc_ValueError, "I/O operation on closed image");
		return -1;
	}
	return 0;
}

static void handle_leave(Handle *h)
{
	pthread_rwlock_unlock(&h->lock);
}

static int handle_close_img(Handle *h)
{
	struct vhdx_image *img;
	int ret = 0;

	Py_BEGIN_ALLOW_THREADS
	pthread_rwlock_wrlock(&h->lock);
	img = h->img;
	h->img = NULL;
	pthread_rwlock_unlock(&h->lock);
	if (img)
		ret = vhdx_close(img);
	Py_END_ALLOW_THREADS
	return ret;
}

static void Handle_dealloc(Handle *h)
{
	handle_close_img(h);
	pthread_rwlock_destroy(&h->lock);
	Py_TYPE(h)->tp_free((PyObject *)h);
}

static Handle *handle_new(struct vhdx_image *img)
{
	Handle *h = PyObject_New(Handle, &HandleType);
	struct vhdx_info info = { .struct_size = sizeof info };

	if (!h) {
		Py_BEGIN_ALLOW_THREADS
		vhdx_close(img);
		Py_END_ALLOW_THREADS
		return NULL;
	}
	h->img = img;
	h->size = vhdx_get_info(img, &info) == 0 ? info.virtual_size : UINT64_MAX;
	pthread_rwlock_init(&h->lock, NULL);
	return h;
}

PyDoc_STRVAR(Handle_close_doc, "close()\n\nFlushes (when writable) and closes the image; the handle is unusable after.");
static PyObject *Handle_close(Handle *h, PyObject *unused)
{
	int ret = handle_close_img(h);

	if (ret < 0)
		return raise_ret(ret);
	Py_RETURN_NONE;
}

PyDoc_STRVAR(Handle_pread_doc, "pread(offset, length) -> bytes\n\nReads up to LENGTH bytes at OFFSET (fewer at the end of the disk).");
static PyObject *Handle_pread(Handle *h, PyObject *const *args, Py_ssize_t nargs)
{
	unsigned long long off;
	Py_ssize_t len;
	PyObject *b;
	ssize_t n;

	/* the hot path of small random reads: no argument tuple to build and parse */
	if (nargs != 2)
		return PyErr_Format(PyExc_TypeError, "pread() takes 2 arguments (offset, length), %zd given", nargs);
	off = PyLong_AsUnsignedLongLong(args[0]);
	if (off == (unsigned long long)-1 && PyErr_Occurred())
		return NULL;
	len = PyLong_AsSsize_t(args[1]);
	if (len == -1 && PyErr_Occurred())
		return NULL;
	if (len < 0)
		return PyErr_Format(PyExc_ValueError, "negative length %zd", len);
	/* clip to the end of the disk before allocating */
	if (off >= h->size)
		len = 0;
	else if ((uint64_t)len > h->size - off)
		len = (Py_ssize_t)(h->size - off);
	if (handle_enter(h) < 0)
		return NULL;
	b = PyBytes_FromStringAndSize(NULL, len);
	if (!b) {
		handle_leave(h);
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	n = vhdx_pread(h->img, PyBytes_AS_STRING(b), (size_t)len, off);
	Py_END_ALLOW_THREADS
	handle_leave(h);
	if (n < 0) {
		Py_DECREF(b);
		return raise_ret((int)n);
	}
	if (n != len && _PyBytes_Resize(&b, n) < 0)
		return NULL;
	return b;
}

/* preadinto and pwrite: a buffer and an offset, through libvhdx with the GIL released. */
static PyObject *buffer_io(Handle *h, PyObject *args, int write)
{
	unsigned long long off;
	Py_buffer view;
	ssize_t n;

	if (!PyArg_ParseTuple(args, write ? "y*K:pwrite" : "w*K:preadinto", &view, &off))
		return NULL;
	if (handle_enter(h) < 0) {
		PyBuffer_Release(&view);
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	n = write ? vhdx_pwrite(h->img, view.buf, (size_t)view.len, off)
		  : vhdx_pread(h->img, view.buf, (size_t)view.len, off);
	Py_END_ALLOW_THREADS
	handle_leave(h);
	PyBuffer_Release(&view);
	if (n < 0)
		return raise_ret((int)n);
	return PyLong_FromSsize_t(n);
}

PyDoc_STRVAR(Handle_preadinto_doc, "preadinto(buffer, offset) -> int\n\nReads into a writable buffer at OFFSET; returns the bytes read.");
static PyObject *Handle_preadinto(Handle *h, PyObject *args)
{
	return buffer_io(h, args, 0);
}

PyDoc_STRVAR(Handle_pwrite_doc, "pwrite(data, offset) -> int\n\nWrites DATA at OFFSET of the leaf; durable after flush().");
static PyObject *Handle_pwrite(Handle *h, PyObject *args)
{
	return buffer_io(h, args, 1);
}

PyDoc_STRVAR(Handle_flush_doc, "flush()\n\nMakes every completed write durable.");
static PyObject *Handle_flush(Handle *h, PyObject *unused)
{
	int ret;

	if (handle_enter(h) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = vhdx_flush(h->img);
	Py_END_ALLOW_THREADS
	handle_leave(h);
	if (ret < 0)
		return raise_ret(ret);
	Py_RETURN_NONE;
}

PyDoc_STRVAR(Handle_map_doc, "map_extent(offset, length) -> (start, length, is_data, layer, file_offset)\n\n"
			     "The extent that starts at OFFSET (at most LENGTH bytes).");
static PyObject *Handle_map_extent(Handle *h, PyObject *args)
{
	unsigned long long off, len;
	struct vhdx_extent e;
	int ret;

	if (!PyArg_ParseTuple(args, "KK:map_extent", &off, &len))
		return NULL;
	if (handle_enter(h) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = vhdx_map(h->img, off, len, &e);
	Py_END_ALLOW_THREADS
	handle_leave(h);
	if (ret < 0)
		return raise_ret(ret);
	return Py_BuildValue("(KKOIK)", (unsigned long long)e.voff, (unsigned long long)e.len,
			     e.kind == VHDX_EXTENT_DATA ? Py_True : Py_False, e.layer, (unsigned long long)e.foff);
}

PyDoc_STRVAR(Handle_info_json_doc, "info_json(log=False) -> str\n\nThe JSON document of `vhdx info --json`.");
static PyObject *Handle_info_json(Handle *h, PyObject *args)
{
	int log = 0, ret;
	char *json = NULL;
	PyObject *r;

	if (!PyArg_ParseTuple(args, "|p:info_json", &log))
		return NULL;
	if (handle_enter(h) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = vhdx_info_json(h->img, log ? VHDX_INFO_LOG : 0, &json);
	Py_END_ALLOW_THREADS
	handle_leave(h);
	if (ret < 0)
		return raise_ret(ret);
	r = PyUnicode_FromString(json);
	free(json);
	return r;
}

PyDoc_STRVAR(Handle_get_info_doc, "get_info() -> dict\n\nSize, sector sizes, format, type, disk id, layer count and paths.");
static PyObject *Handle_get_info(Handle *h, PyObject *unused)
{
	struct vhdx_info i = { .struct_size = sizeof i };
	PyObject *paths, *r;
	int ret;

	if (handle_enter(h) < 0)
		return NULL;
	ret = vhdx_get_info(h->img, &i);
	if (ret < 0) {
		handle_leave(h);
		return raise_ret(ret);
	}
	paths = PyList_New(i.layers);
	for (unsigned k = 0; paths && k < i.layers; k++) {
		const char *p = vhdx_layer_path(h->img, k);
		PyObject *s = PyUnicode_DecodeFSDefault(p ? p : "");
		if (!s) {
			Py_CLEAR(paths);
			break;
		}
		PyList_SET_ITEM(paths, k, s);
	}
	r = paths ? Py_BuildValue("{s:K,s:I,s:I,s:I,s:s,s:s,s:y#,s:O,s:O,s:O,s:s}", "size",
				  (unsigned long long)i.virtual_size, "block_size", i.block_size, "logical_sector_size",
				  i.logical_sector_size, "physical_sector_size", i.physical_sector_size, "format",
				  i.format == VHDX_FORMAT_VHD ? "vhd" : "vhdx", "disk_type",
				  i.type == VHDX_TYPE_FIXED ? "fixed" : i.type == VHDX_TYPE_DYNAMIC ? "dynamic" : "differencing",
				  "disk_id", (const char *)i.disk_id, (Py_ssize_t)16, "writable", i.writable ? Py_True : Py_False,
				  "log_replayed", i.log_replayed ? Py_True : Py_False, "paths", paths, "warnings",
				  vhdx_warnings(h->img))
		      : NULL;
	handle_leave(h);
	Py_XDECREF(paths);
	return r;
}

static PyMethodDef Handle_methods[] = {
	{ "close", (PyCFunction)Handle_close, METH_NOARGS, Handle_close_doc },
	{ "pread", (PyCFunction)(void (*)(void))Handle_pread, METH_FASTCALL, Handle_pread_doc },
	{ "preadinto", (PyCFunction)Handle_preadinto, METH_VARARGS, Handle_preadinto_doc },
	{ "pwrite", (PyCFunction)Handle_pwrite, METH_VARARGS, Handle_pwrite_doc },
	{ "flush", (PyCFunction)Handle_flush, METH_NOARGS, Handle_flush_doc },
	{ "map_extent", (PyCFunction)Handle_map_extent, METH_VARARGS, Handle_map_doc },
	{ "info_json", (PyCFunction)Handle_info_json, METH_VARARGS, Handle_info_json_doc },
	{ "get_info", (PyCFunction)Handle_get_info, METH_NOARGS, Handle_get_info_doc },
	{ NULL, NULL, 0, NULL },
};

static PyTypeObject HandleType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "pyvhdx._pyvhdx.Handle",
	.tp_basicsize = sizeof(Handle),
	.tp_dealloc = (destructor)Handle_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "An opened libvhdx image (internal; use pyvhdx.open()).",
	.tp_methods = Handle_methods,
};

/* ---------------------------------------------------------------- module functions */

/* A NULL-terminated array of the strings of SEQ (None: NULL), in *OUT; bytes kept alive in *KEEP. */
static int str_array(PyObject *seq, const char ***out, PyObject **keep)
{
	PyObject *fast;
	Py_ssize_t n;

	*out = NULL;
	*keep = NULL;
	if (seq == Py_None)
		return 0;
	fast = PySequence_Fast(seq, "expected a sequence of paths");
	if (!fast)
		return -1;
	n = PySequence_Fast_GET_SIZE(fast);
	*keep = PyList_New(0);
	*out = PyMem_Calloc((size_t)n + 1, sizeof **out);
	if (!*keep || !*out)
		goto fail;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *b = NULL;
		if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(fast, i), &b))
			goto fail;
		if (PyList_Append(*keep, b) < 0) {
			Py_DECREF(b);
			goto fail;
		}
		(*out)[i] = PyBytes_AS_STRING(b);
		Py_DECREF(b);
	}
	Py_DECREF(fast);
	return 0;
fail:
	Py_DECREF(fast);
	Py_CLEAR(*keep);
	PyMem_Free(*out);
	*out = NULL;
	if (!PyErr_Occurred())
		PyErr_NoMemory();
	return -1;
}

PyDoc_STRVAR(open_doc,
	     "open(source, flags, parent, parent_dirs, path_maps, open_parent) -> Handle\n\n"
	     "Low-level open (use pyvhdx.open()).  SOURCE is a path (vhdx_open) or a file object\n"
	     "(vhdx_open_io); PARENT a path or None; PARENT_DIRS and PATH_MAPS sequences of str or\n"
	     "None; OPEN_PARENT a callable(request) -> path or file object or None, or None.");
static PyObject *mod_open(PyObject *self, PyObject *args)
{
	PyObject *source, *parent, *dirs, *maps, *open_parent, *keep_dirs = NULL, *keep_maps = NULL, *pb = NULL;
	const char **dirv = NULL, **mapv = NULL;
	struct vhdx_open_options o;
	struct vhdx_image *img = NULL;
	unsigned flags;
	int ret;

	if (!PyArg_ParseTuple(args, "OIOOOO:open", &source, &flags, &parent, &dirs, &maps, &open_parent))
		return NULL;
	if (open_parent == Py_None)
		open_parent = NULL;
	vhdx_open_options_init(&o);
	o.flags = flags;
	if (str_array(dirs, &dirv, &keep_dirs) < 0 || str_array(maps, &mapv, &keep_maps) < 0)
		goto out;
	o.parent_dirs = dirv;
	o.path_maps = mapv;
	if (parent != Py_None) {
		if (!PyUnicode_FSConverter(parent, &pb))
			goto out;
		o.parent = PyBytes_AS_STRING(pb);
	}
	if (!open_parent && (PyUnicode_Check(source) || PyBytes_Check(source) ||
			     PyObject_HasAttrString(source, "__fspath__"))) {
		PyObject *sb = NULL;
		if (!PyUnicode_FSConverter(source, &sb))
			goto out;
		Py_BEGIN_ALLOW_THREADS
		ret = vhdx_open(PyBytes_AS_STRING(sb), &o, &img);
		Py_END_ALLOW_THREADS
		Py_DECREF(sb);
	} else {
		const struct vhdx_io_callbacks *cb;
		void *opaque;
		if (source_from_object(source, open_parent, &cb, &opaque) < 0)
			goto out;
		Py_BEGIN_ALLOW_THREADS
		ret = vhdx_open_io(cb, opaque, &o, &img);
		Py_END_ALLOW_THREADS
	}
	if (ret < 0)
		raise_ret(ret);
out:
	PyMem_Free(dirv);
	PyMem_Free(mapv);
	Py_XDECREF(keep_dirs);
	Py_XDECREF(keep_maps);
	Py_XDECREF(pb);
	if (!img)
		return NULL;
	return (PyObject *)handle_new(img);
}

static PyObject *mod_version(PyObject *self, PyObject *unused)
{
	return PyUnicode_FromString(vhdx_version());
}

static PyMethodDef module_methods[] = {
	{ "open", mod_open, METH_VARARGS, open_doc },
	{ "library_version", mod_version, METH_NOARGS, "library_version() -> str\n\nThe libvhdx version." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "pyvhdx._pyvhdx",
	.m_doc = "The C part of pyvhdx (libvhdx through its public header).",
	.m_size = -1,
	.m_methods = module_methods,
};

static int add_exc(PyObject *m, PyObject **slot, const char *name, PyObject *base, const char *doc)
{
	*slot = PyErr_NewExceptionWithDoc(name, doc, base, NULL);
	if (!*slot)
		return -1;
	Py_INCREF(*slot);
	return PyModule_AddObject(m, strrchr(name, '.') + 1, *slot);
}

PyMODINIT_FUNC PyInit__pyvhdx(void);
PyMODINIT_FUNC PyInit__pyvhdx(void)
{
	PyObject *m;

	if (PyType_Ready(&HandleType) < 0)
		return NULL;
	m = PyModule_Create(&module_def);
	if (!m)
		return NULL;
	if (add_exc(m, &Error, "pyvhdx.Error", PyExc_OSError,
		    "A libvhdx failure: an OSError with the errno and the library's message.") < 0 ||
	    add_exc(m, &MissingParentError, "pyvhdx.MissingParentError", Error,
		    "A parent of a differencing image was not found (ENOENT); paths_tried lists where it was looked for.") < 0 ||
	    add_exc(m, &CorruptImageError, "pyvhdx.CorruptImageError", Error,
		    "A structure of the image is corrupt or its checksum is wrong (EBADMSG).") < 0 ||
	    add_exc(m, &ImageInUseError, "pyvhdx.ImageInUseError", Error,
		    "The image is in use by another program (EBUSY).") < 0) {
		Py_DECREF(m);
		return NULL;
	}
	Py_INCREF(&HandleType);
	PyModule_AddObject(m, "Handle", (PyObject *)&HandleType);
	PyModule_AddIntConstant(m, "OPEN_RDWR", VHDX_OPEN_RDWR);
	PyModule_AddIntConstant(m, "OPEN_NO_PARENT", VHDX_OPEN_NO_PARENT);
	PyModule_AddIntConstant(m, "OPEN_IGNORE_ID_MISMATCH", VHDX_OPEN_IGNORE_ID_MISMATCH);
#ifdef VHDX_OPEN_FORCE_SHARE
	PyModule_AddIntConstant(m, "OPEN_FORCE_SHARE", VHDX_OPEN_FORCE_SHARE);
#endif
	return m;
}
