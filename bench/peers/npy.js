'use strict';
// Minimal NumPy .npy reader and writer for float32 arrays.
//
// Accepts format versions 1.0 and 2.0 whose dtype is '<f4' (little-endian
// float32) in C order; anything else is refused with a message that says
// what was found. Writes version 1.0 (2.0 only if the header does not fit),
// with the header padded to a multiple of 64 bytes as NumPy does; besides
// Float32Array ('<f4') it writes Int32Array ('<i4') and Uint8Array ('|u1'),
// the other dtypes a TensorFlow.js output can have.

const fs = require('fs');

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

class NpyError extends Error {}

// Float32Array uses the host's byte order; '<f4' bytes are copied as they are.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('npy.js: this host is big-endian; only little-endian hosts are supported');
}

/** Parses the dict literal of an .npy header into {descr, fortranOrder, shape}. */
function parseHeader(text, where) {
  const field = (key) => {
    const m = new RegExp(`['"]${key}['"]\\s*:\\s*`).exec(text);
    if (!m) throw new NpyError(`${where}: header has no '${key}': ${text.trim()}`);
    return text.slice(m.index + m[0].length);
  };
  const descrMatch = /^(['"])([^'"]*)\1/.exec(field('descr'));
  if (!descrMatch) throw new NpyError(`${where}: cannot read 'descr' (a structured dtype?): ${text.trim()}`);
  const fortranMatch = /^(True|False)/.exec(field('fortran_order'));
  if (!fortranMatch) throw new NpyError(`${where}: cannot read 'fortran_order': ${text.trim()}`);
  const shapeMatch = /^\(([^)]*)\)/.exec(field('shape'));
  if (!shapeMatch) throw new NpyError(`${where}: cannot read 'shape': ${text.trim()}`);
  const shape = shapeMatch[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    if (!/^\d+L?$/.test(s)) throw new NpyError(`${where}: bad dimension '${s}' in shape (${shapeMatch[1]})`);
    return Number.parseInt(s, 10);
  });
  return { descr: descrMatch[2], fortranOrder: fortranMatch[1] === 'True', shape };
}

/**
 * Reads a float32 .npy file. Returns {data: Float32Array, shape: number[]}.
 * Throws NpyError with a clear message for any file it does not accept.
 */
function readNpy(path) {
  const buf = fs.readFileSync(path);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) {
    throw new NpyError(`${path}: not a NumPy .npy file (no \\x93NUMPY magic)`);
  }
  const major = buf[6];
  const minor = buf[7];
  let headerLen;
  let start;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    start = 10;
  } else if (major === 2) {
    if (buf.length < 12) throw new NpyError(`${path}: truncated .npy header`);
    headerLen = buf.readUInt32LE(8);
    start = 12;
  } else {
    throw new NpyError(`${path}: .npy format version ${major}.${minor} is not supported (only 1.0 and 2.0)`);
  }
  if (start + headerLen > buf.length) throw new NpyError(`${path}: truncated .npy header`);
  const header = parseHeader(buf.toString('latin1', start, start + headerLen), path);
  if (header.descr !== '<f4') {
    throw new NpyError(`${path}: dtype '${header.descr}' is not supported: only little-endian float32 ('<f4'); ` +
      `convert with numpy: np.save(path, a.astype('<f4'))`);
  }
  if (header.fortranOrder) {
    throw new NpyError(`${path}: Fortran-order arrays are not supported; save np.ascontiguousarray(a)`);
  }
  const count = header.shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  const expected = count * 4;
  if (buf.length - dataStart !== expected) {
    throw new NpyError(`${path}: shape (${header.shape.join(', ')}) needs ${expected} bytes of data, ` +
      `the file has ${buf.length - dataStart}`);
  }
  // Copy: the data in the file buffer need not be 4-byte aligned.
  const data = new Float32Array(count);
  Buffer.from(data.buffer).set(buf.subarray(dataStart));
  return { data, shape: header.shape };
}

const WRITE_DESCR = [[Float32Array, '<f4'], [Int32Array, '<i4'], [Uint8Array, '|u1']];

/** Writes a Float32Array (or Int32Array, Uint8Array) of the given shape as a C-order .npy file. */
function writeNpy(path, data, shape) {
  const entry = WRITE_DESCR.find(([type]) => data.constructor === type);
  if (!entry) throw new NpyError(`${path}: only float32, int32 and uint8 data can be written`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new NpyError(`${path}: shape (${shape.join(', ')}) holds ${count} values, the data has ${data.length}`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${entry[1]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let prefix = 10;
  if (dict.length + 1 + prefix > 65535 + 10) {
    version = 2;
    prefix = 12;
  }
  const pad = (64 - ((prefix + dict.length + 1) % 64)) % 64;
  dict += ' '.repeat(pad) + '\n';
  const head = Buffer.alloc(prefix);
  MAGIC.copy(head, 0);
  head[6] = version;
  head[7] = 0;
  if (version === 1) head.writeUInt16LE(dict.length, 8);
  else head.writeUInt32LE(dict.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(path, Buffer.concat([head, Buffer.from(dict, 'latin1'), body]));
}

module.exports = { readNpy, writeNpy, NpyError };
