/*
 * image_internal.h - what the bundled tools may see of an image beyond the
 * public API (they link the library's objects directly): the layer stack,
 * so that `vhdx info` can print every structure of every layer.
 */
#ifndef VHDX_IMAGE_INTERNAL_H
#define VHDX_IMAGE_INTERNAL_H

#include "chain/chain.h"

struct vhdx_chain *vhdx_image_chain(struct vhdx_image *img);

#endif
