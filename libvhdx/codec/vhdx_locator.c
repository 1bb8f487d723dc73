/*
 * vhdx_locator.c - decoding and encoding of the VHDX parent locator
 * (MS-VHDX 2.6.2.6).  Keys and values are UTF-16LE without terminators;
 * every offset and length is checked against the item before it is used,
 * because the item comes straight from a possibly hostile file.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/utf16.h"
#include "codec/vhdx_codec.h"
#include "codec/vhdx_locator.h"

#define HDR_LEN 20
#define KV_LEN 12

void vhdx_locator_kv_free(struct vhdx_locator_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

static int decode_str(const uint8_t *buf, size_t len, uint32_t off, uint16_t slen, size_t idx, const char *what,
		      char **out)
{
	int ret;

	if (off == 0 || slen == 0)
		return vhdx_err(EBADMSG, "entry %zu: %s offset %u / length %u must be non-zero", idx, what, off, slen);
	if (off < HDR_LEN || !vhdx_range_ok(off, slen, len))
		return vhdx_err(EBADMSG, "entry %zu: %s at offset %u (+%u bytes) lies outside the %zu-byte item", idx,
				what, off, slen, len);
	ret = vhdx_utf16_to_utf8(buf + off, slen, false, false, out);
	if (ret == -ENOMEM)
		return vhdx_err(ENOMEM, "out of memory");
	if (ret < 0)
		return vhdx_err(EBADMSG, "entry %zu: %s at offset %u is not valid UTF-16 without NUL", idx, what, off);
	return 0;
}

int vhdx_locator_list(const uint8_t *buf, size_t len, struct vhdx_locator_kv **kvout, size_t *nout)
{
	struct vhdx_locator_kv *kv;
	uint16_t count;
	int ret;

	*kvout = NULL;
	*nout = 0;
	if (len < HDR_LEN)
		return vhdx_err(EBADMSG, "item of %zu bytes is shorter than its 20-byte header", len);
	if (memcmp(buf, VHDX_GUID_PARENT_LOCATOR_TYPE, 16) != 0) {
		char gs[VHDX_GUID_STRLEN];
		vhdx_guid_format(buf, gs);
		return vhdx_err(ENOTSUP, "locator type %s is not the VHDX parent locator type", gs);
	}
	count = vhdx_get_le16(buf + 18);
	if (count > VHDX_LOCATOR_MAX_ENTRIES)
		return vhdx_err(EBADMSG, "%u key/value entries exceed the limit of %u", count, VHDX_LOCATOR_MAX_ENTRIES);
	if (!vhdx_range_ok(HDR_LEN, (uint64_t)count * KV_LEN, len))
		return vhdx_err(EBADMSG, "%u key/value entries do not fit in the %zu-byte item", count, len);
	kv = vhdx_calloc(count, sizeof *kv);
	if (!kv)
		return vhdx_err(ENOMEM, "out of memory");
	for (size_t i = 0; i < count; i++) {
		const uint8_t *p = buf + HDR_LEN + KV_LEN * i;
		ret = decode_str(buf, len, vhdx_get_le32(p), vhdx_get_le16(p + 8), i, "key", &kv[i].key);
		if (ret == 0)
			ret = decode_str(buf, len, vhdx_get_le32(p + 4), vhdx_get_le16(p + 10), i, "value",
					 &kv[i].value);
		if (ret < 0) {
			vhdx_locator_kv_free(kv, count);
			return ret;
		}
		for (size_t k = 0; k < i; k++) {
			if (!strcmp(kv[k].key, kv[i].key)) {
				ret = vhdx_err(EBADMSG, "entry %zu: key \"%s\" appears twice", i, kv[i].key);
				vhdx_locator_kv_free(kv, count);
				return ret;
			}
		}
	}
	*kvout = kv;
	*nout = count;
	return 0;
}

static const char *const path_keys[] = { "relative_path", "volume_path", "absolute_win32_path" };

int vhdx_locator_decode(const uint8_t *buf, size_t len, struct vhdx_parent_ref *ref)
{
	struct vhdx_locator_kv *kv;
	size_t n;
	bool have_linkage = false;
	int ret;

	memset(ref, 0, sizeof *ref);
	ret = vhdx_locator_list(buf, len, &kv, &n);
	if (ret < 0)
		return ret;
	ref->paths = vhdx_calloc(VHDX_ARRAY_LEN(path_keys), sizeof *ref->paths);
	if (!ref->paths) {
		vhdx_locator_kv_free(kv, n);
		return vhdx_err(ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(kv[i].key, "parent_linkage") || !strcmp(kv[i].key, "parent_linkage2")) {
			bool second = kv[i].key[14] == '2';
			if (vhdx_guid_parse(kv[i].value, second ? ref->linkage2 : ref->linkage) < 0) {
				ret = vhdx_err(EBADMSG, "entry %zu: %s value \"%s\" is not a GUID", i, kv[i].key,
					       kv[i].value);
				goto fail;
			}
			/* Windows writes an all-zero parent_linkage2: that is no second value */
			if (second)
				ref->has_linkage2 = !vhdx_guid_is_zero(ref->linkage2);
			else
				have_linkage = true;
		}
	}
	for (size_t p = 0; p < VHDX_ARRAY_LEN(path_keys); p++) {
		for (size_t i = 0; i < n; i++) {
			if (!kv[i].key || strcmp(kv[i].key, path_keys[p]) != 0)
				continue;
			ref->paths[ref->n_paths].key = kv[i].key;
			ref->paths[ref->n_paths].value = kv[i].value;
			kv[i].key = kv[i].value = NULL;
			ref->n_paths++;
		}
	}
	if (!have_linkage) {
		ret = vhdx_err(EBADMSG, "the required parent_linkage key is missing");
		goto fail;
	}
	if (ref->n_paths == 0) {
		ret = vhdx_err(EBADMSG, "none of relative_path, volume_path, absolute_win32_path is present");
		goto fail;
	}
	vhdx_locator_kv_free(kv, n);
	return 0;
fail:
	vhdx_locator_kv_free(kv, n);
	vhdx_parent_ref_free(ref);
	return ret;
}

int vhdx_locator_encode(const char *const *keys, const char *const *values, size_t n, uint8_t **out,
			size_t *outlen)
{
	uint8_t **k16, **v16, *buf;
	size_t *klen, *vlen, total = HDR_LEN + KV_LEN * n, pos;
	int ret = 0;

	if (n > VHDX_LOCATOR_MAX_ENTRIES)
		return -EINVAL;
	k16 = vhdx_calloc(n, sizeof *k16);
	v16 = vhdx_calloc(n, sizeof *v16);
	klen = vhdx_calloc(n, sizeof *klen);
	vlen = vhdx_calloc(n, sizeof *vlen);
	if (!k16 || !v16 || !klen || !vlen) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		ret = vhdx_utf8_to_utf16(keys[i], false, &k16[i], &klen[i]);
		if (ret == 0)
			ret = vhdx_utf8_to_utf16(values[i], false, &v16[i], &vlen[i]);
		if (ret < 0)
			goto out;
		if (!klen[i] || !vlen[i] || klen[i] > UINT16_MAX || vlen[i] > UINT16_MAX) {
			ret = -EINVAL;
			goto out;
		}
		total += klen[i] + vlen[i];
	}
	buf = calloc(1, total);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(buf, VHDX_GUID_PARENT_LOCATOR_TYPE, 16);
	vhdx_put_le16(buf + 18, (uint16_t)n);
	pos = HDR_LEN + KV_LEN * n;
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = buf + HDR_LEN + KV_LEN * i;
		vhdx_put_le32(p, (uint32_t)pos);
		memcpy(buf + pos, k16[i], klen[i]);
		pos += klen[i];
		vhdx_put_le32(p + 4, (uint32_t)pos);
		memcpy(buf + pos, v16[i], vlen[i]);
		pos += vlen[i];
		vhdx_put_le16(p + 8, (uint16_t)klen[i]);
		vhdx_put_le16(p + 10, (uint16_t)vlen[i]);
	}
	*out = buf;
	*outlen = total;
out:
	for (size_t i = 0; i < n && k16 && v16; i++) {
		free(k16[i]);
		free(v16[i]);
	}
	free(k16);
	free(v16);
	free(klen);
	free(vlen);
	return ret;
}
