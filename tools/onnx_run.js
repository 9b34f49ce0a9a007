// Runs an ONNX file in ONNX Runtime (npm onnxruntime-node; docs/export.md):
//   NODE_PATH=build/node/node_modules node tools/onnx_run.js MODEL.onnx FEEDS_DIR OUT.json
// FEEDS_DIR/feeds.json lists the inputs ([{name, type: "float" | "int64", dims,
// file}], written by mtl.onnx.write_feeds); each file holds the raw
// little-endian values. OUT.json gets {output name: [values, ...]} of every
// output (float32 values as JSON numbers: exact).
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const [model, dir, out] = process.argv.slice(2);
  if (!out) throw new Error('usage: node onnx_run.js MODEL.onnx FEEDS_DIR OUT.json');
  const list = JSON.parse(fs.readFileSync(path.join(dir, 'feeds.json'), 'utf8'));
  const feeds = {};
  for (const f of list) {
    const buf = fs.readFileSync(path.join(dir, f.file));
    const bytes = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const data = f.type === 'int64' ? new BigInt64Array(bytes) : new Float32Array(bytes);
    feeds[f.name] = new ort.Tensor(f.type === 'int64' ? 'int64' : 'float32', data, f.dims);
  }
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
  const results = await session.run(feeds);
  const json = {};
  for (const name of session.outputNames) json[name] = Array.from(results[name].data);
  fs.writeFileSync(out, JSON.stringify(json));
}

main().catch((e) => { console.error('onnx_run: ' + (e && e.message ? e.message : e)); process.exit(1); });
