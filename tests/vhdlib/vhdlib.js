// vhdlib.js - vhd-lib (Xen Orchestra's VHD library) as an independent writer
// and reader for tests/test-vhdlib.sh.  Needs NODE_PATH to hold the folder
// tests/vhdlib/install.sh filled.  Only vhd-lib's own modules and its block
// API are used; the bitmap-aware read below is ours (vhd-lib's VhdSynthetic
// reads whole blocks from the newest layer that has one, which is wrong for
// a block a child holds only in part).
//
//   node vhdlib.js chain SIZE BLOCK SEED FILE...   FILE[0] a dynamic disk, each next a child of the one
//                                                  before (parent name: its file name, as XO writes it),
//                                                  each with writes at SEED-chosen places (partial blocks)
//   node vhdlib.js read FILE OUT                   the virtual disk of FILE's chain, bitmap-aware, to OUT
//   node vhdlib.js check FILE                      vhd-lib's checks: checksums, footer and header, the
//                                                  second footer, the BAT, stream() length; prints JSON
//   node vhdlib.js chain-open FILE                 VhdSynthetic.fromVhdChain and checkVhdChain; prints depth
'use strict'

const fs = require('fs')
const path = require('path')
const { openVhd } = require('vhd-lib/openVhd.js')
const { VhdFile } = require('vhd-lib/Vhd/VhdFile.js')
const { VhdSynthetic } = require('vhd-lib/Vhd/VhdSynthetic.js')
const checkVhdChain = require('vhd-lib/checkChain.js')
const { createFooter, createHeader } = require('vhd-lib/_createFooterHeader.js')
const computeGeometryForSize = require('vhd-lib/_computeGeometryForSize.js')
const { unpackFooter, unpackHeader } = require('vhd-lib/Vhd/_utils.js')
const { DISK_TYPES, FOOTER_SIZE, HEADER_SIZE, SECTOR_SIZE } = require('vhd-lib/_constants.js')
const { test: bitTest } = require('vhd-lib/_bitmap.js')
const resolveRelativeFromFile = require('vhd-lib/_resolveRelativeFromFile.js')

// the smallest handler vhd-lib's VhdFile needs: local files by path
const handler = {
  async openFile(p, flags) {
    return { fd: fs.openSync(p, flags), path: p }
  },
  async closeFile(f) {
    fs.closeSync(f.fd)
  },
  async read(f, buffer, pos) {
    const bytesRead = fs.readSync(f.fd, buffer, 0, buffer.length, pos)
    return { bytesRead, buffer }
  },
  async write(f, buffer, pos) {
    fs.writeSync(f.fd, buffer, 0, buffer.length, pos)
  },
  async getSize(f) {
    return typeof f === 'string' ? fs.statSync(f).size : fs.fstatSync(f.fd).size
  },
  async getSizeOnDisk(f) {
    return this.getSize(f)
  },
  async readFile(p) {
    return fs.readFileSync(p)
  },
}

// xorshift32: the same bytes for the same seed on every machine
function prng(seed) {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

async function createLayer(file, size, blockSize, parent, rnd) {
  const blocks = Math.ceil(size / blockSize)
  const type = parent ? DISK_TYPES.DIFFERENCING : DISK_TYPES.DYNAMIC
  const footer = unpackFooter(
    createFooter(size, Math.floor(Date.now() / 1000) - 946684800, computeGeometryForSize(size), FOOTER_SIZE, type)
  )
  const header = unpackHeader(createHeader(blocks, FOOTER_SIZE + HEADER_SIZE, blockSize), footer)
  if (parent) {
    header.parentUuid = parent.footer.uuid
    header.parentUnicodeName = path.basename(parent.file)
    header.parentTimestamp = footer.timestamp
  }
  const d = await VhdFile.create(handler, file, { flags: 'wx+' }) // + : a second write into a block reads its bitmap
  try {
    const vhd = d.value
    vhd.footer = footer
    vhd.header = header
    await vhd.writeHeader()
    await vhd.writeBlockAllocationTable()
    await vhd.writeFooter()
    // a few writes: whole sectors at SEED-chosen places, most of them partial blocks
    const nWrites = 1 + (rnd() % 3)
    for (let i = 0; i < nWrites; i++) {
      const sectors = 1 + (rnd() % Math.min(600, size / SECTOR_SIZE))
      const at = rnd() % (size / SECTOR_SIZE - sectors + 1)
      const buf = Buffer.alloc(sectors * SECTOR_SIZE)
      for (let j = 0; j < buf.length; j += 4) buf.writeUInt32LE(rnd(), j)
      await vhd.writeData(at, buf)
    }
    return { file, footer: vhd.footer }
  } finally {
    await d.dispose()
  }
}

async function cmdChain([size, block, seed, ...files]) {
  const rnd = prng(Number(seed))
  let parent = null
  for (const f of files) parent = await createLayer(f, Number(size), Number(block), parent, rnd)
}

// opens FILE and its parents as vhd-lib does (parent name relative to the child), newest first
async function openChain(file) {
  const ds = []
  let p = file
  for (;;) {
    const d = await openVhd(handler, p)
    ds.push(d)
    await d.value.readBlockAllocationTable()
    if (d.value.footer.diskType !== DISK_TYPES.DIFFERENCING) break
    p = resolveRelativeFromFile(p, d.value.header.parentUnicodeName)
  }
  for (let i = 0; i + 1 < ds.length; i++)
    if (!ds[i].value.header.parentUuid.equals(ds[i + 1].value.footer.uuid))
      throw new Error(`${i}: the parent unique id is not the parent's id`)
  return ds
}

async function cmdRead([file, out]) {
  const ds = await openChain(file)
  const vhds = ds.map(d => d.value)
  const { currentSize } = vhds[0].footer
  const bs = vhds[0].header.blockSize
  const fd = fs.openSync(out, 'w')
  for (let id = 0; id * bs < currentSize; id++) {
    const buf = Buffer.alloc(bs)
    const done = new Uint8Array(bs / SECTOR_SIZE)
    for (const vhd of vhds) {
      if (vhd.header.blockSize !== bs) throw new Error('layers with different block sizes')
      if (!vhd.containsBlock(id)) continue
      const blk = await vhd.readBlock(id)
      const diff = vhd.footer.diskType === DISK_TYPES.DIFFERENCING
      for (let s = 0; s < done.length; s++) {
        // a differencing layer holds the sectors whose bit is 1; a dynamic one its whole block
        if (done[s] || (diff && !bitTest(blk.bitmap, s))) continue
        blk.data.copy(buf, s * SECTOR_SIZE, s * SECTOR_SIZE, (s + 1) * SECTOR_SIZE)
        done[s] = 1
      }
    }
    fs.writeSync(fd, buf, 0, Math.min(bs, currentSize - id * bs), id * bs)
  }
  fs.closeSync(fd)
  for (const d of ds) await d.dispose()
}

async function cmdCheck([file]) {
  const d = await VhdFile.open(handler, file, { flags: 'r', checkSecondFooter: true })
  try {
    const vhd = d.value
    await vhd.readBlockAllocationTable()
    const size = await handler.getSize(file)
    let blocks = 0
    for (let i = 0; i < vhd.header.maxTableEntries; i++) {
      if (!vhd.containsBlock(i)) continue
      blocks++
      const blk = await vhd.readBlock(i) // asserts the whole block can be read
      if (blk.buffer.length !== vhd.fullBlockSize) throw new Error(`block ${i}: short read`)
    }
    let streamed = 0
    const stream = vhd.stream()
    for await (const chunk of stream) streamed += chunk.length
    if (streamed !== stream.length || streamed !== vhd.streamSize())
      throw new Error(`stream() gave ${streamed} bytes, announced ${stream.length}, streamSize ${vhd.streamSize()}`)
    console.log(
      JSON.stringify({ type: vhd.footer.diskType, size: vhd.footer.currentSize, file_size: size, blocks, stream: streamed })
    )
  } finally {
    await d.dispose()
  }
}

async function cmdChainOpen([file]) {
  await checkVhdChain(handler, file)
  const d = await VhdSynthetic.fromVhdChain(handler, file)
  try {
    let n = 1
    // the synthetic disk's header is the newest layer's; count the layers as the chain open walked them
    for (let p = file, v; ; n++) {
      const o = await openVhd(handler, p)
      v = o.value
      await o.dispose()
      if (v.footer.diskType !== DISK_TYPES.DIFFERENCING) break
      p = resolveRelativeFromFile(p, v.header.parentUnicodeName)
    }
    console.log(JSON.stringify({ layers: n, size: d.value.footer.currentSize }))
  } finally {
    await d.dispose()
  }
}

const cmds = { chain: cmdChain, read: cmdRead, check: cmdCheck, 'chain-open': cmdChainOpen }
const [cmd, ...args] = process.argv.slice(2)
if (!cmds[cmd]) {
  console.error('usage: vhdlib.js chain|read|check|chain-open ARGS (see the top of this file)')
  process.exit(2)
}
cmds[cmd](args).catch(e => {
  console.error(`vhdlib.js ${cmd}: ${e.message}`)
  process.exit(1)
})
