/* A small reconnecting websocket client.
 *
 *   const socket = new CohortaSocket("/ws/jobs/", { onMessage(msg) {…}, onOpen(ws) {…} });
 *
 * Reconnects with exponential backoff and jitter (1 s → 30 s), pings every
 * 25 s so proxies keep the connection, and marks <body data-live="1"> while
 * connected so pages can fall back to polling when it is "0".
 */
(function () {
  "use strict";

  function CohortaSocket(path, options) {
    this.path = path;
    this.options = options || {};
    this.attempt = 0;
    this.closedByUs = false;
    this.ws = null;
    this.pingTimer = null;
    this.connect();
  }

  CohortaSocket.prototype.url = function () {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + this.path;
  };

  CohortaSocket.prototype.connect = function () {
    var self = this;
    var ws;
    try {
      ws = new WebSocket(this.url());
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = function () {
      self.attempt = 0;
      document.body.dataset.live = "1";
      self.pingTimer = window.setInterval(function () { self.send({ type: "ping" }); }, 25000);
      if (self.options.onOpen) self.options.onOpen(self);
    };
    ws.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (err) { return; }
      if (self.options.onMessage) self.options.onMessage(message, self);
    };
    ws.onclose = function (event) {
      window.clearInterval(self.pingTimer);
      document.body.dataset.live = "0";
      if (self.options.onClose) self.options.onClose(event);
      // 44xx: the server refused us (signed out, disabled); retrying will not help.
      if (self.closedByUs || (event.code >= 4400 && event.code < 4500)) return;
      self.scheduleReconnect();
    };
  };

  CohortaSocket.prototype.scheduleReconnect = function () {
    var self = this;
    var delay = Math.min(30000, 1000 * Math.pow(2, this.attempt)) * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    window.setTimeout(function () { self.connect(); }, delay);
  };

  CohortaSocket.prototype.send = function (message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  };

  CohortaSocket.prototype.close = function () {
    this.closedByUs = true;
    if (this.ws) this.ws.close();
  };

  window.CohortaSocket = CohortaSocket;
})();
