// WASM runs on several threads only in a cross-origin isolated page (SharedArrayBuffer), which
// takes two response headers that plain static servers do not send. This service worker adds them
// to every response of the site, so the page is isolated from any static server (over https or on
// localhost, where service workers run). index.html registers it and reloads once under it.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.cache === 'only-if-cached' && request.mode !== 'same-origin') return;  // a Chrome quirk
  event.respondWith(fetch(request).then((response) => {
    if (response.status === 0) return response;  // opaque: nothing to add headers to
    const headers = new Headers(response.headers);
    headers.set('Cross-Origin-Opener-Policy', 'same-origin');
    headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }));
});
