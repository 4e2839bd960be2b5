// The artgan page: runs the site's models (models.json) with onnxruntime-web, configured from
// each model's artgan.* metadata as artgan/runtime.py and artgan/steps.py do (value range, scale,
// size multiple, tiling). Loads nothing from outside the site.
//
// window.artgan exposes what the page did (backend, timings, last result) for tests and benchmarks.

const ORT_BASE = new URL('./ort/', document.baseURI).href;
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const t0 = performance.now();

function setStatus(text, state = 'busy') {
  $('status').textContent = text;
  $('status').dataset.state = state;
}

const artgan = { ready: false, runs: 0, last: null };
window.artgan = artgan;

window.addEventListener('error', (e) => setStatus(`error: ${e.message}`, 'error'));
window.addEventListener('unhandledrejection', (e) => setStatus(`error: ${e.reason && e.reason.message || e.reason}`, 'error'));

// -- backend --------------------------------------------------------------------------------------

async function chooseBackend(site) {
  const asked = params.get('backend');
  if (asked === 'wasm' || asked === 'webgpu') return asked;
  if (!site.webgpu || !navigator.gpu) return 'wasm';
  try {
    return (await navigator.gpu.requestAdapter()) ? 'webgpu' : 'wasm';
  } catch {
    return 'wasm';
  }
}

function threadCount() {
  const asked = parseInt(params.get('threads') || '', 10);
  if (asked > 0) return asked;
  // threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages
  // (COOP/COEP headers: sent by the server, or added by isolate.js; docs/web.md)
  return self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1;
}

// -- numbers ----------------------------------------------------------------------------------------

function toUint8(x) {  // [0, 1] -> 0..255, as artgan.images.to_uint8
  const v = Math.floor(Math.min(Math.max(x, 0), 1) * 255 + 0.5);
  return v;
}

// Reflect index (numpy's "reflect": the edge pixel is not repeated); edge for a 1-pixel side.
function reflect(i, n) {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const j = ((i % period) + period) % period;
  return j < n ? j : period - j;
}

// HWC Float32Array padded at the bottom/right to th x tw by reflection (artgan.tiling.pad_to_multiple)
function padHWC(a, h, w, c, th, tw) {
  if (th === h && tw === w) return a;
  const out = new Float32Array(th * tw * c);
  for (let y = 0; y < th; y++) {
    const sy = h > 1 && w > 1 ? reflect(y, h) : Math.min(y, h - 1);
    for (let x = 0; x < tw; x++) {
      const sx = h > 1 && w > 1 ? reflect(x, w) : Math.min(x, w - 1);
      for (let k = 0; k < c; k++) out[(y * tw + x) * c + k] = a[(sy * w + sx) * c + k];
    }
  }
  return out;
}

const roundUp = (n, m) => (m > 1 ? Math.ceil(n / m) * m : n);

function ramp(n, overlap, startEdge, endEdge) {
  const r = new Float32Array(n).fill(1);
  for (let i = 0; i < overlap; i++) {
    const v = (i + 1) / (overlap + 1);
    if (!startEdge) r[i] = v;
    if (!endEdge) r[n - 1 - i] = v;
  }
  return r;
}

function positions(size, tile, stride) {
  if (size <= tile) return [0];
  const pos = [];
  for (let p = 0; p < size - tile; p += stride) pos.push(p);
  pos.push(size - tile);
  return pos;
}

function cropHWC(a, w, c, y, x, th, tw) {
  const out = new Float32Array(th * tw * c);
  for (let r = 0; r < th; r++) out.set(a.subarray(((y + r) * w + x) * c, ((y + r) * w + x + tw) * c), r * tw * c);
  return out;
}

// artgan.tiling.process_tiled: fn(tiles, h, w) -> HWC output of (h*scale) x (w*scale) x C.
async function processTiled(fn, arrays, chans, h, w, scale, multiple, tile, overlap) {
  if (!tile || (h <= tile && w <= tile)) {
    const th = roundUp(h, multiple), tw = roundUp(w, multiple);
    const { data, c } = await fn(arrays.map((a, i) => padHWC(a, h, w, chans[i], th, tw)), th, tw);
    return { data: cropHWC(data, tw * scale, c, 0, 0, h * scale, w * scale), c };
  }
  tile = Math.max(multiple, tile - (tile % Math.max(multiple, 1)));
  overlap = Math.min(overlap, Math.floor(tile / 4));
  const ph = Math.max(roundUp(h, multiple), roundUp(tile, multiple));
  const pw = Math.max(roundUp(w, multiple), roundUp(tile, multiple));
  const padded = arrays.map((a, i) => padHWC(a, h, w, chans[i], ph, pw));
  const stride = tile - overlap, ys = positions(ph, tile, stride), xs = positions(pw, tile, stride);
  let out = null, acc = null, c = 0;
  const ts = tile * scale, W = pw * scale;
  for (const y of ys) {
    for (const x of xs) {
      const res = await fn(padded.map((p, i) => cropHWC(p, pw, chans[i], y, x, tile, tile)), tile, tile);
      c = res.c;
      if (!out) { out = new Float32Array(ph * scale * W * c); acc = new Float32Array(ph * scale * W); }
      const wy = ramp(ts, overlap * scale, y === ys[0], y === ys[ys.length - 1]);
      const wx = ramp(ts, overlap * scale, x === xs[0], x === xs[xs.length - 1]);
      for (let r = 0; r < ts; r++) {
        for (let q = 0; q < ts; q++) {
          const wgt = wy[r] * wx[q], o = (y * scale + r) * W + x * scale + q;
          acc[o] += wgt;
          for (let k = 0; k < c; k++) out[o * c + k] += res.data[(r * ts + q) * c + k] * wgt;
        }
      }
    }
  }
  for (let i = 0; i < acc.length; i++) for (let k = 0; k < c; k++) out[i * c + k] /= Math.max(acc[i], 1e-8);
  return { data: cropHWC(out, W, c, 0, 0, h * scale, w * scale), c };
}

// -- pixels ----------------------------------------------------------------------------------------

// RGBA ImageData -> HWC float32 in [0, 1], RGB or grey (Pillow's convert("L") weights)
function toFloat(img, channels) {
  const n = img.width * img.height, d = img.data, out = new Float32Array(n * channels);
  for (let i = 0; i < n; i++) {
    const r = d[4 * i], g = d[4 * i + 1], b = d[4 * i + 2];
    if (channels === 1) out[i] = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255;
    else { out[3 * i] = r / 255; out[3 * i + 1] = g / 255; out[3 * i + 2] = b / 255; }
  }
  return out;
}

function drawHWC(canvas, data, h, w, c, x0 = 0, y0 = 0) {
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) img.data[4 * i + k] = toUint8(data[i * c + (c === 1 ? 0 : k)]);
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, x0, y0);
}

// NCHW output (one image at `index`) in [lo, hi] -> HWC in [0, 1] (artgan.runtime.to_images)
function fromModel(tensor, index, lo, hi) {
  const [, c, h, w] = tensor.dims, plane = h * w, base = index * c * plane, src = tensor.data;
  const out = new Float32Array(plane * c);
  for (let k = 0; k < c; k++) {
    for (let p = 0; p < plane; p++) {
      out[p * c + k] = Math.min(Math.max((src[base + k * plane + p] - lo) / (hi - lo), 0), 1);
    }
  }
  return { data: out, h, w, c };
}

function toModel(hwc, h, w, c, lo, hi) {
  const out = new Float32Array(c * h * w);
  for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) out[k * h * w + p] = hwc[p * c + k] * (hi - lo) + lo;
  return out;
}

// -- image-to-image -----------------------------------------------------------------------------

function imagePanel(ort, session, model) {
  const md = model.metadata, [lo, hi] = md.value_range || [-1, 1];
  const scale = md.scale || 1, multiple = md.size_multiple || 1, channels = md.channels || 3;
  const names = session.inputNames, imageName = names[0];
  // further 4-D one-channel inputs are masks (inpainting's `mask`, 1 = hole): drawn with a brush
  const maskName = names.find((n) => n !== imageName && /mask/i.test(n)) || null;
  const overlap = 32;
  let source = null;  // {img: ImageData, h, w}

  $('image-panel').hidden = false;
  if (maskName) $('brush-help').hidden = false;

  async function run(hwc, h, w, mask) {
    const asked = parseInt(params.get('tile') || '', 10);
    // the whole image up to ~1 megapixel of output, else 512-pixel tiles (WASM has 4 GB at most)
    const tile = asked > 0 ? asked : (h * w * scale * scale <= 1024 * 1024 || mask ? null : 512);
    const fn = async (tiles, th, tw) => {
      const feeds = { [imageName]: new ort.Tensor('float32', toModel(tiles[0], th, tw, channels, lo, hi), [1, channels, th, tw]) };
      if (maskName) feeds[maskName] = new ort.Tensor('float32', Float32Array.from(tiles[1]), [1, 1, th, tw]);
      const out = await session.run(feeds);
      const r = fromModel(out[session.outputNames[0]], 0, lo, hi);
      return { data: r.data, c: r.c };
    };
    return processTiled(fn, mask ? [hwc, mask] : [hwc], mask ? [channels, 1] : [channels], h, w, scale, multiple, tile, overlap);
  }

  async function process() {
    const { img, h, w } = source;
    let hwc = toFloat(img, channels), mask = null;
    if (maskName) {
      mask = readMask(w, h);
      if (!mask.some((v) => v > 0)) { setStatus('paint the hole on the image first', 'idle'); return; }
      hwc = prefill(hwc, mask, h, w, channels);
    }
    setStatus(`running ${model.name} on ${w}x${h}...`);
    await new Promise((r) => setTimeout(r, 0));  // let the status paint
    const start = performance.now();
    const out = await run(hwc, h, w, mask);
    const ms = performance.now() - start;
    if (mask) {  // known pixels come back exactly as given (as the inpaint step pastes them)
      $('mask').style.opacity = '0';  // show the result; painting again shows the hole again
      const known = toFloat(img, channels);
      for (let p = 0; p < h * w; p++) if (!mask[p]) for (let k = 0; k < out.c; k++) out.data[p * out.c + k] = known[p * channels + k];
    }
    const after = $('after');
    after.width = w * scale; after.height = h * scale;
    drawHWC(after, out.data, h * scale, w * scale, out.c);
    split();
    $('download').href = after.toDataURL('image/png');
    $('download').hidden = false;
    artgan.runs += 1;
    artgan.last = { ms, backend: artgan.backend, width: w * scale, height: h * scale };
    setStatus(`${model.name}: ${w}x${h} -> ${w * scale}x${h * scale} in ${ms.toFixed(0)} ms on ${artgan.backendLabel}`, 'done');
  }

  async function load(file) {
    const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    const h = bitmap.height, w = bitmap.width;
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const ctx = c.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    source = { img: ctx.getImageData(0, 0, w, h), h, w };
    const before = $('before');
    before.width = w * scale; before.height = h * scale;
    const bctx = before.getContext('2d');
    bctx.imageSmoothingEnabled = true;
    bctx.drawImage(bitmap, 0, 0, w * scale, h * scale);
    const after = $('after');
    after.getContext('2d').clearRect(0, 0, after.width, after.height);
    if (maskName) {
      const m = $('mask');
      m.width = w; m.height = h; m.hidden = false;
      setStatus('paint the hole, then press Run', 'idle');
    } else {
      await process();
    }
  }

  function split() {
    const v = $('split').value;
    $('after').style.clipPath = `inset(0 0 0 ${v}%)`;
  }

  // -- the brush mask (inpainting) --
  function readMask(w, h) {
    const d = $('mask').getContext('2d').getImageData(0, 0, w, h).data, out = new Float32Array(w * h);
    for (let i = 0; i < w * h; i++) out[i] = d[4 * i + 3] > 0 ? 1 : 0;
    return out;
  }
  let painting = false;
  const paint = (e) => {
    if (!painting) return;
    const m = $('mask'), r = m.getBoundingClientRect();
    const x = (e.clientX - r.left) * (m.width / r.width), y = (e.clientY - r.top) * (m.height / r.height);
    const ctx = m.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.beginPath();
    ctx.arc(x, y, (+$('brush').value / 2) * (m.width / r.width), 0, 2 * Math.PI);
    ctx.fill();
  };
  $('mask').addEventListener('pointerdown', (e) => { painting = true; $('mask').style.opacity = ''; paint(e); });
  $('mask').addEventListener('pointermove', paint);
  window.addEventListener('pointerup', () => { painting = false; });
  $('clear-mask').addEventListener('click', () => {
    const m = $('mask');
    m.getContext('2d').clearRect(0, 0, m.width, m.height);
    m.style.opacity = '';
  });
  $('run-inpaint').addEventListener('click', () => source && process());

  $('split').addEventListener('input', split);
  $('file').addEventListener('change', (e) => e.target.files[0] && load(e.target.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = [...e.dataTransfer.files].find((x) => x.type.startsWith('image/'));
    if (f) load(f);
  });
  setStatus(`${model.name} ready on ${artgan.backendLabel}: choose or drop an image`, 'idle');
}

// Fill the hole before the model refines it. The Python step starts from OpenCV's inpainting
// (metadata `prefill`); here a diffusion from the hole's border, coarse to fine, stands in for it.
function prefill(hwc, mask, h, w, c) {
  const out = Float32Array.from(hwc);
  for (let it = 0; it < 400; it++) {
    let changed = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = y * w + x;
        if (!mask[p]) continue;
        for (let k = 0; k < c; k++) {
          let s = 0, n = 0;
          if (x > 0) { s += out[(p - 1) * c + k]; n++; }
          if (x < w - 1) { s += out[(p + 1) * c + k]; n++; }
          if (y > 0) { s += out[(p - w) * c + k]; n++; }
          if (y < h - 1) { s += out[(p + w) * c + k]; n++; }
          const v = s / n;
          changed = Math.max(changed, Math.abs(v - out[p * c + k]));
          out[p * c + k] = v;
        }
      }
    }
    if (changed < 1 / 512) break;
  }
  return out;
}

// -- generators -----------------------------------------------------------------------------------

// Seeded standard normals: mulberry32 for uniforms, Box-Muller for normals. Row i is the same
// whatever the count (values are drawn row after row). Not numpy's stream: the page's seed 3 is
// not `artgan generate --seed 3`.
function latents(seed, n, dim) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;  // (0, 1): log() never sees 0
  };
  const z = new Float32Array(n * dim);
  for (let i = 0; i < z.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform())), a = 2 * Math.PI * uniform();
    z[i] = r * Math.cos(a);
    if (i + 1 < z.length) z[i + 1] = r * Math.sin(a);
  }
  return z;
}

// artgan.runtime.slerp: along the great circle, the norm moving linearly
function slerp(a, b, t) {
  const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const na = norm(a), nb = norm(b), out = new Float32Array(a.length);
  if (na === 0 || nb === 0) { for (let i = 0; i < a.length; i++) out[i] = (1 - t) * a[i] + t * b[i]; return out; }
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i] / na) * (b[i] / nb);
  const omega = Math.acos(Math.min(Math.max(dot, -1), 1));
  const len = (1 - t) * na + t * nb;
  for (let i = 0; i < a.length; i++) {
    const d = omega < 1e-6 ? a[i] / na
      : (Math.sin((1 - t) * omega) * (a[i] / na) + Math.sin(t * omega) * (b[i] / nb)) / Math.sin(omega);
    out[i] = d * len;
  }
  return out;
}

function genPanel(ort, session, model) {
  const md = model.metadata, [lo, hi] = md.value_range || [-1, 1];
  const dim = md.latent_dim, classes = md.num_classes || 0;
  const names = session.inputNames;
  const zName = names.includes('z') ? 'z' : names[0];
  const labelName = names.includes('label') ? 'label' : null;
  $('gen-panel').hidden = false;
  if (labelName && classes > 0) {
    $('label-wrap').hidden = false;
    const sel = $('label');
    sel.add(new Option('mixed (image i: class i mod classes)', '-1'));
    (md.class_names || [...Array(classes).keys()].map(String)).forEach((name, i) => sel.add(new Option(name, String(i))));
  }

  async function images(z, n, labels) {
    const feeds = { [zName]: new ort.Tensor('float32', z, [n, dim]) };
    if (labelName) feeds[labelName] = new ort.Tensor('int64', BigInt64Array.from(labels, (v) => BigInt(v)), [n]);
    const out = (await session.run(feeds))[session.outputNames[0]];
    return [...Array(n).keys()].map((i) => fromModel(out, i, lo, hi));
  }

  function labelsFor(n) {
    const chosen = parseInt($('label').value || '-1', 10);
    return [...Array(n).keys()].map((i) => (chosen >= 0 ? chosen : i % Math.max(classes, 1)));
  }

  async function grid() {
    const n = parseInt($('count').value, 10), seed = parseInt($('seed').value, 10) || 0;
    const z = latents(seed, n, dim), labels = labelsFor(n);
    setStatus(`generating ${n} images...`);
    const start = performance.now();
    const imgs = await images(z, n, labels);
    const ms = performance.now() - start;
    const cols = Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols), { h, w } = imgs[0];
    const canvas = $('grid');
    canvas.width = cols * w; canvas.height = rows * h;
    canvas.style.width = `${Math.min(cols * w * Math.max(1, Math.floor(384 / (cols * w))), 768)}px`;
    imgs.forEach((im, i) => drawHWC(canvas, im.data, h, w, im.c, (i % cols) * w, Math.floor(i / cols) * h));
    artgan.runs += 1;
    artgan.last = { ms, backend: artgan.backend, n, seed, cols, latents: Array.from(z), labels };
    setStatus(`${model.name}: ${n} images (seed ${seed}) in ${ms.toFixed(0)} ms on ${artgan.backendLabel}`, 'done');
  }

  let pending = false, busy = false;
  async function frame() {
    if (busy) { pending = true; return; }
    busy = true;
    const t = +$('t').value / 100;
    const a = latents(parseInt($('seed-a').value, 10) || 0, 1, dim), b = latents(parseInt($('seed-b').value, 10) || 0, 1, dim);
    const z = slerp(a, b, t);
    const [im] = await images(z, 1, labelsFor(1));
    const canvas = $('frame');
    canvas.width = im.w; canvas.height = im.h;
    canvas.style.width = `${Math.max(im.w, 192)}px`;
    drawHWC(canvas, im.data, im.h, im.w, im.c);
    artgan.frame = { t, latent: Array.from(z) };
    busy = false;
    if (pending) { pending = false; frame(); }
  }

  $('generate').addEventListener('click', grid);
  for (const id of ['seed', 'count', 'label']) $(id).addEventListener('change', grid);
  for (const id of ['t', 'seed-a', 'seed-b']) $(id).addEventListener('input', frame);
  $('label').addEventListener('change', frame);
  return grid().then(frame);
}

// -- start ------------------------------------------------------------------------------------------

async function main() {
  if (await window.isolating) return;  // the page reloads under isolate.js first
  const site = await (await fetch('models.json')).json();
  const model = site.models.find((m) => m.name === params.get('model')) || site.models[0];
  const nav = $('models');
  for (const m of site.models) {
    const a = document.createElement('a');
    a.href = `?model=${encodeURIComponent(m.name)}`;
    a.textContent = m.name;
    if (m === model) a.className = 'current';
    nav.append(a);
  }
  const md = model.metadata;
  $('title').textContent = `${model.name}: ${md.task}` + (md.task === 'image-to-image' ? `, x${md.scale || 1}` : `, ${md.image_size}x${md.image_size}`)
    + ` (${(model.bytes / 1e6).toFixed(1)} MB, ${md.precision || 'fp32'})`;

  const backend = await chooseBackend(site);
  const ort = await import(ORT_BASE + (backend === 'webgpu' ? 'ort.webgpu.min.mjs' : 'ort.wasm.min.mjs'));
  ort.env.wasm.wasmPaths = ORT_BASE;
  ort.env.wasm.numThreads = threadCount();
  ort.env.logLevel = 'error';
  setStatus(`loading ${model.name} on ${backend}...`);
  const session = await ort.InferenceSession.create(model.file, {
    executionProviders: backend === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'],
    graphOptimizationLevel: 'all',
  });
  artgan.backend = backend;
  artgan.threads = backend === 'wasm' ? ort.env.wasm.numThreads : null;
  artgan.backendLabel = backend === 'wasm' ? `WASM (${artgan.threads} thread${artgan.threads > 1 ? 's' : ''})` : 'WebGPU';
  $('backend').textContent = artgan.backendLabel;
  artgan.model = model.name;
  artgan.loadMs = performance.now() - t0;
  if (md.task === 'generate') await genPanel(ort, session, model);
  else imagePanel(ort, session, model);
  artgan.ready = true;
}

main().catch((e) => { setStatus(`error: ${e && e.message || e}`, 'error'); console.error(e); });
