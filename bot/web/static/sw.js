// The page's service worker, served at /sw.js (scope: the whole site) by bot/web/h5.py. It keeps the page
// shell: the page (network first, the cached copy when the network fails or is too slow) and its
// versioned files (cache first: a `?v=` URL never changes). The API goes to the network only; the page
// keeps its own copy of the stations around the rider for answering offline (offline.js).
"use strict";

var CACHE = "yizhan-shell-1";
var NETWORK_WAIT_MS = 4000; // on a weak signal, the cached page after this long

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (name) { return name !== CACHE; }).map(function (name) {
        return caches.delete(name);
      }));
    }).then(function () { return self.clients.claim(); })
  );
});

function store(request, response) {
  if (!response || response.status !== 200 || response.type !== "basic") return response;
  var copy = response.clone();
  caches.open(CACHE).then(function (cache) {
    var path = new URL(request.url).pathname;
    // One version of each file: older ones of the same path go when a new one arrives.
    return cache.keys().then(function (keys) {
      return Promise.all(keys.filter(function (key) {
        var url = new URL(key.url);
        return path.indexOf("/h5/") === 0 && url.pathname === path && key.url !== request.url;
      }).map(function (key) { return cache.delete(key); }));
    }).then(function () { return cache.put(request, copy); });
  });
  return response;
}

function cacheFirst(request) {
  return caches.match(request).then(function (hit) {
    return hit || fetch(request).then(function (response) { return store(request, response); });
  });
}

function networkFirst(request) {
  var network = fetch(request).then(function (response) { return store(request, response); });
  var cached = new Promise(function (resolve) {
    setTimeout(resolve, NETWORK_WAIT_MS);
  }).then(function () { return caches.match(request); });
  var fallback = network.catch(function () {
    return caches.match(request).then(function (hit) {
      return hit || caches.match(request, { ignoreSearch: true }).then(function (any) {
        return any || Response.error();
      });
    });
  });
  // Whichever comes first with an answer: the network, or the cached copy once the network is slow.
  return Promise.race([fallback, cached.then(function (hit) { return hit || fallback; })]);
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return; // map tiles: the browser's own HTTP cache
  if (url.pathname.indexOf("/h5/") === 0 && url.searchParams.has("v")) {
    event.respondWith(cacheFirst(request));
  } else if (request.mode === "navigate" || url.pathname === "/manifest.webmanifest" ||
      url.pathname.indexOf("/api/v1/ui/") === 0) {
    event.respondWith(networkFirst(request));
  }
});
