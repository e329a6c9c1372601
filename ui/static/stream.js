// A live stream watched for silence, one mechanism for the kiosk screen (kiosk.js) and the
// guard's live page (guard.js). A link that went dead without a word (the network dropped and
// the other end forgot the connection) never fails an EventSource: nothing arrives, so nothing
// errors. Every event the page listens to counts as heard (each stream sends one at least
// every so often: the kiosk's `tick`, the console's `beat`); past `offlineMs()` of silence, or
// at an error, the page is told it is offline (`onOffline(since)`: the wall time last heard);
// past `restartMs()` the stream is closed and opened again from `url()`, asked anew (where to
// resume), and again as long as it stays silent. The first event heard again: `onOnline()`.
// `onError(es)` is the page's own answer to an error (a stream closed for good reopens there).
"use strict";
window.watchedStream = function (opts) {
  // Intervals on a monotonic clock: the wall clock steps (NTP setting a Pi's clock after a
  // boot), and a step back of an hour made an hour of silence unseen.
  const mono = () => performance.now();
  let stream = null;
  let connectedAt = 0;
  let lastHeard = mono();
  let heardAt = Date.now();
  let offline = false;
  let stopped = false;
  function heard() {
    lastHeard = mono();
    heardAt = Date.now();
    if (!offline) return;
    offline = false;
    opts.onOnline();
  }
  function goOffline() {
    if (offline) return;
    offline = true;
    opts.onOffline(heardAt);
  }
  function connect() {
    if (stopped) return;
    const es = new EventSource(opts.url());
    stream = es;
    connectedAt = mono();
    for (const [name, handle] of Object.entries(opts.on)) {
      es.addEventListener(name, (e) => {
        if (es !== stream) return;  // a stream given up: what it still says is not news
        heard();
        handle(e);
      });
    }
    es.onerror = () => {
      if (es !== stream) return;
      goOffline();
      opts.onError(es);
    };
  }
  function restart() {
    if (stream) stream.close();
    connect();
  }
  const watch = setInterval(() => {
    const now = mono();
    if (now - lastHeard > opts.offlineMs()) goOffline();
    const restartMs = opts.restartMs();
    if (now - lastHeard > restartMs && now - connectedAt > restartMs) restart();
  }, 250);
  function stop() {
    stopped = true;
    clearInterval(watch);
    if (stream) stream.close();
  }
  connect();
  // `restartIf(es)`: open a new stream unless `es` was already replaced (by the watch).
  return {
    stop,
    restartIf: (es) => { if (!stopped && es === stream) restart(); },
  };
};
