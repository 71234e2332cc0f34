/* The live discussion page.
 *
 * Saved messages arrive with a per-session sequence number; the page keeps the
 * highest it has and, on every (re)connect, says hello with it so the server
 * replays what was missed before live events. Duplicates are dropped by
 * sequence. Token deltas stream into a bubble per pending answer; the saved
 * message then replaces that bubble. The replay also gives each answer still
 * being written its text so far, and every delta its offset in that text, so
 * a page opened mid-answer shows it from the start, without repeats. Without
 * a websocket the page polls. */
(function () {
  "use strict";

  // This page's own socket state: the jobs socket also marks <body data-live>.
  var transcript, lastSeq = 0, seen = {}, csrf, live = false, socket = null, lastEventAt = Date.now();
  // answer id -> { text: what the bubble shows, waiting: deltas past its end, resyncs: asks so far }
  var streams = {}, resyncTimer = null;
  var RESYNC_MS = 700, MAX_RESYNCS = 4;

  function byId(id) { return document.getElementById(id); }

  function scrollToEnd(force) {
    var nearBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 160;
    if (force || nearBottom) transcript.scrollTop = transcript.scrollHeight;
  }

  function setText(node, text) {
    node.textContent = "";
    String(text || "").split("\n").forEach(function (line, index) {
      if (index) node.appendChild(document.createElement("br"));
      node.appendChild(document.createTextNode(line));
    });
  }

  function participantName(personaId) {
    var li = document.querySelector('.participant[data-persona-id="' + personaId + '"]');
    return li ? li.dataset.name : "Participant";
  }

  function setTyping(personaId, on) {
    var li = document.querySelector('.participant[data-persona-id="' + personaId + '"] .typing-indicator');
    if (li) li.classList.toggle("d-none", !on);
  }

  function streamingBubble(answerId, personaId, name) {
    var bubble = transcript.querySelector('.msg-streaming[data-answer-id="' + answerId + '"]');
    if (bubble) return bubble;
    if (transcript.querySelector('.msg[data-seq][data-answer-id="' + answerId + '"]')) return null; // already saved
    bubble = document.createElement("div");
    bubble.className = "msg msg-persona msg-streaming";
    bubble.dataset.answerId = answerId;
    var meta = document.createElement("div");
    meta.className = "msg-meta small";
    var who = document.createElement("span");
    who.className = "fw-semibold";
    who.textContent = name || participantName(personaId);
    meta.appendChild(who);
    var body = document.createElement("div");
    body.className = "msg-body";
    bubble.appendChild(meta);
    bubble.appendChild(body);
    transcript.appendChild(bubble);
    byId("transcript-empty").classList.add("d-none");
    setTyping(personaId, true);
    scrollToEnd(false);
    return bubble;
  }

  function stream(answerId) {
    return streams[answerId] || (streams[answerId] = { text: "", waiting: [], resyncs: 0 });
  }

  function showStream(answerId) {
    var body = transcript.querySelector('.msg-streaming[data-answer-id="' + answerId + '"] .msg-body');
    if (body) body.textContent = stream(answerId).text;
  }

  // Take in the waiting deltas that now join the text: overlaps (text the replay already gave) are
  // trimmed, and one that starts past the end waits for the text before it.
  function settle(state) {
    state.waiting.sort(function (a, b) { return a.offset - b.offset; });
    while (state.waiting.length && state.waiting[0].offset <= state.text.length) {
      var piece = state.waiting.shift();
      var overlap = state.text.length - piece.offset;
      if (overlap < piece.delta.length) state.text += piece.delta.slice(overlap);
    }
    if (state.waiting.length && state.resyncs >= MAX_RESYNCS) {
      // The server never had the missing words (its copy expired): show the rest rather than stall.
      state.waiting.forEach(function (piece) { state.text += piece.delta; });
      state.waiting = [];
    }
    if (state.waiting.length) askForText(); else state.resyncs = 0;
  }

  // Ask the server for the text so far (a hello): its copy trails the live words by a moment, so a
  // page that joined mid-answer may ask again until the copy reaches the first delta it saw.
  function askForText() {
    if (resyncTimer) return;
    resyncTimer = window.setTimeout(function () {
      resyncTimer = null;
      var behind = Object.keys(streams).filter(function (id) { return streams[id].waiting.length; });
      if (!behind.length) return;
      behind.forEach(function (id) { streams[id].resyncs += 1; });
      if (live && socket) socket.send({ type: "hello", last_seq: lastSeq });
      else behind.forEach(function (id) { settle(streams[id]); showStream(id); });
    }, RESYNC_MS);
  }

  function addDelta(msg) {
    var bubble = streamingBubble(msg.answer_id, msg.persona_id);
    if (!bubble) return;
    var state = stream(msg.answer_id);
    if (typeof msg.offset !== "number") state.text += msg.delta;  // a server that sends no offsets
    else { state.waiting.push({ offset: msg.offset, delta: msg.delta }); settle(state); }
    showStream(msg.answer_id);
    scrollToEnd(false);
  }

  function addStreamingText(entry) {
    var bubble = streamingBubble(entry.answer_id, entry.persona_id, entry.name);
    if (!bubble || typeof entry.text !== "string") return;
    var state = stream(entry.answer_id);
    // Both are the start of the same answer; the longer one knows more.
    if (entry.text.length > state.text.length) state.text = entry.text;
    settle(state);
    showStream(entry.answer_id);
  }

  function renderMessage(message) {
    var el = document.createElement("div");
    var status = message.status !== "complete" ? " msg-" + message.status : "";
    el.className = "msg msg-" + message.role + status;
    el.id = "msg-" + message.sequence;  // report quotes link here
    el.dataset.seq = message.sequence;
    el.dataset.messageId = message.id;
    if (message.answer_id) el.dataset.answerId = message.answer_id;
    var meta = document.createElement("div");
    meta.className = "msg-meta small";
    var who = document.createElement("span");
    who.className = "fw-semibold";
    who.textContent = message.speaker_name;
    meta.appendChild(who);
    if (message.simulated) {
      var badge = document.createElement("span");
      badge.className = "badge bg-warning-subtle text-warning-emphasis border border-warning-subtle ms-1";
      badge.textContent = "simulated";
      meta.appendChild(badge);
    }
    var number = document.createElement("span");
    number.className = "text-body-secondary ms-1";
    number.textContent = "#" + message.sequence;
    meta.appendChild(number);
    var body = document.createElement("div");
    body.className = "msg-body";
    if (message.status === "failed") {
      body.className += " text-danger small";
      body.textContent = (message.error || "This answer failed.") + " ";
      var retry = document.createElement("button");
      retry.className = "btn btn-link btn-sm p-0 align-baseline";
      retry.type = "button";
      retry.textContent = "Retry";
      retry.dataset.retryMessage = message.id;
      body.appendChild(retry);
    } else {
      setText(body, message.content);
    }
    el.appendChild(meta);
    el.appendChild(body);
    return el;
  }

  function insertInOrder(el, seq) {
    var after = null;
    transcript.querySelectorAll(".msg[data-seq]").forEach(function (node) {
      if (Number(node.dataset.seq) < seq) after = node;
    });
    if (after) after.after(el); else transcript.insertBefore(el, transcript.querySelector(".msg") || null);
  }

  function addMessage(message) {
    if (seen[message.sequence]) return;
    seen[message.sequence] = true;
    if (message.answer_id) {
      var pending = transcript.querySelector('.msg-streaming[data-answer-id="' + message.answer_id + '"]');
      if (pending) pending.remove();
      delete streams[message.answer_id];
    }
    if (message.persona_id) setTyping(message.persona_id, false);
    if (message.retry_of && message.status === "complete") {
      var failed = transcript.querySelector('.msg[data-message-id="' + message.retry_of + '"] .msg-body');
      if (failed) { failed.className = "msg-body text-body-secondary small fst-italic"; failed.textContent = "Failed; answered again on retry."; }
    }
    var el = renderMessage(message);
    insertInOrder(el, message.sequence);
    // Keep live bubbles at the bottom, below saved messages.
    transcript.querySelectorAll(".msg-streaming").forEach(function (node) { transcript.appendChild(node); });
    lastSeq = Math.max(lastSeq, message.sequence);
    transcript.dataset.lastSeq = lastSeq;
    byId("transcript-empty").classList.add("d-none");
    scrollToEnd(message.role === "researcher");
  }

  function onSocketMessage(msg) {
    lastEventAt = Date.now();
    if (msg.type === "message.new" || msg.type === "message.complete" || msg.type === "message.error") {
      addMessage(msg.message);
    } else if (msg.type === "token.delta") {
      addDelta(msg);
    } else if (msg.type === "participant.typing") {
      // A new start for this answer (a turn run again after a stop or a crash): begin the bubble afresh.
      dropStreaming('.msg-streaming[data-answer-id="' + msg.answer_id + '"]');
      delete streams[msg.answer_id];
      streamingBubble(msg.answer_id, msg.persona_id, msg.name);
    } else if (msg.type === "answer.reset") {
      // The model is asked again: the answer, and the offsets, start over.
      streams[msg.answer_id] = { text: "", waiting: [], resyncs: 0 };
      showStream(msg.answer_id);
    } else if (msg.type === "replay.done") {
      byId("connection-label").textContent = "Live";
      (msg.streaming || []).forEach(addStreamingText);
      if (msg.live_themes) renderLiveThemes(msg.live_themes);
    } else if (msg.type === "themes.live") {
      renderLiveThemes(msg.live_themes);
    } else if (msg.type === "autonomous.state") {
      renderRun(msg.run);
    } else if (msg.type === "session.status") {
      showSessionStatus(msg.status);
    }
  }

  // The session's status badge, from the socket or, when it is down, from each poll: the first question makes a
  // draft live, and an ended session reloads into its read-only page.
  var shownStatus = byId("session-status") ? byId("session-status").dataset.status : null;  // as the page was drawn
  function showSessionStatus(status) {
    if (!status || status === shownStatus) return;
    shownStatus = status;
    if (status === "ended") { window.location.reload(); return; }
    var badge = byId("session-status");
    if (badge) {
      badge.textContent = status.charAt(0).toUpperCase() + status.slice(1);
      badge.className = "badge align-middle fs-6 " + (status === "live" ? "text-bg-success" : status === "draft" ? "text-bg-light border" : "text-bg-warning");
    }
  }

  function dropStreaming(selector) {
    transcript.querySelectorAll(selector).forEach(function (bubble) {
      delete streams[bubble.dataset.answerId];
      bubble.remove();
    });
  }

  function renderRun(run) {
    var panel = byId("autopilot");
    if (!panel || !run) return;
    // An interrupted run lost the turn in flight: its half-written answer will not be saved.
    if (run.status === "interrupted") {
      dropStreaming(".msg-streaming");
      document.querySelectorAll(".typing-indicator").forEach(function (dot) { dot.classList.add("d-none"); });
    }
    byId("autopilot-state").classList.remove("d-none");
    byId("autopilot-status").textContent = run.status.charAt(0).toUpperCase() + run.status.slice(1);
    byId("autopilot-section").textContent = run.sections ? "Section " + run.section + " of " + run.sections : "";
    byId("autopilot-turns").textContent = run.turns_done + " of " + run.turn_budget + " turns";
    byId("autopilot-progress").style.width = Math.round(100 * run.turns_done / Math.max(1, run.turn_budget)) + "%";
    var next = byId("autopilot-next");
    next.textContent = "";
    if (run.next_speaker && (run.status === "running" || run.status === "stopping")) {
      var who = document.createElement("strong");
      who.textContent = "Next: " + run.next_speaker;
      next.appendChild(who);
      next.appendChild(document.createTextNode(" — " + run.next_reason));
    }
    byId("autopilot-ended").textContent = run.notice || "";
    var balance = byId("autopilot-balance");
    balance.innerHTML = "";
    var total = Math.max(1, run.balance.reduce(function (sum, row) { return sum + row.turns; }, 0));
    run.balance.forEach(function (row) {
      var line = document.createElement("div");
      line.className = "d-flex align-items-center gap-2 mb-1";
      var name = document.createElement("span");
      name.className = "text-truncate"; name.style.width = "7rem"; name.textContent = row.name;
      var bar = document.createElement("div");
      bar.className = "progress flex-grow-1"; bar.style.height = ".4rem";
      var fill = document.createElement("div");
      fill.className = "progress-bar"; fill.style.width = Math.round(100 * row.turns / total) + "%";
      bar.appendChild(fill);
      var count = document.createElement("span");
      count.className = "text-body-secondary"; count.textContent = row.turns;
      line.appendChild(name); line.appendChild(bar); line.appendChild(count);
      balance.appendChild(line);
    });
    var show = { start: run.status === "ended", stop: run.status === "running",
                 resume: run.status === "paused" || run.status === "interrupted" };
    document.querySelectorAll("[data-autopilot]").forEach(function (button) {
      button.classList.toggle("d-none", !show[button.dataset.autopilot]);
      button.disabled = button.dataset.autopilot === "start" && button.hasAttribute("title");
    });
  }

  // Emerging themes (provisional): the latest quick read replaces the list; model text goes in as text.
  function renderLiveThemes(live) {
    var list = byId("live-themes-list");
    var panel = byId("live-themes");
    if (!list || !panel || !live || !live.themes || !live.themes.length) return;
    if (Number(list.dataset.answers || 0) > live.answers) return; // an older read, arriving late
    list.dataset.answers = live.answers;
    list.innerHTML = "";
    live.themes.forEach(function (theme) {
      var item = document.createElement("li");
      item.className = "mb-2 live-theme";
      var head = document.createElement("div");
      head.className = "d-flex justify-content-between align-items-start gap-2";
      var title = document.createElement("span");
      title.className = "fw-semibold live-theme-title";
      title.textContent = theme.title;
      var badge = document.createElement("span");
      badge.className = "badge text-capitalize live-theme-sentiment " + (theme.sentiment === "positive"
        ? "text-bg-success" : theme.sentiment === "negative" ? "text-bg-danger" : "text-bg-warning");
      badge.textContent = theme.sentiment;
      head.appendChild(title); head.appendChild(badge);
      item.appendChild(head);
      if (theme.note) {
        var note = document.createElement("div");
        note.className = "text-body-secondary live-theme-note";
        note.textContent = theme.note;
        item.appendChild(note);
      }
      if (theme.sequences && theme.sequences.length) {
        var links = document.createElement("div");
        links.className = "live-theme-links";
        theme.sequences.forEach(function (sequence) {
          var link = document.createElement("a");
          link.href = "#msg-" + Number(sequence);
          link.className = "me-2";
          link.textContent = "#" + Number(sequence);
          links.appendChild(link);
        });
        item.appendChild(links);
      }
      list.appendChild(item);
    });
    list.hidden = false;
    var every = Number(panel.dataset.every || 0);
    var meta = "Read at " + live.answers + " answer" + (live.answers === 1 ? "" : "s") + (live.simulated ? " (simulated)" : "") + ".";
    if (every) meta += " Next read at " + (Math.floor(live.answers / every) + 1) * every + " answers.";
    byId("live-themes-meta").textContent = meta + " Free: no credits.";
  }

  // Out of credits or over budget (402): the message, then the way out the server names (Buy credits…).
  function showError(element, body, fallback) {
    var error = (body && body.error) || {};
    element.textContent = error.message || fallback;
    if (error.help && error.help.hint) element.appendChild(document.createTextNode(" " + error.help.hint));
    if (error.help && error.help.url) {
      var link = document.createElement("a");
      link.href = error.help.url;
      link.className = "ms-1 fw-semibold";
      link.textContent = error.help.label + " →";
      element.appendChild(link);
    }
  }

  function setupAutopilot() {
    var panel = byId("autopilot");
    if (!panel) return;
    panel.addEventListener("click", function (event) {
      var button = event.target.closest("[data-autopilot]");
      if (!button) return;
      button.disabled = true;
      byId("autopilot-error").textContent = "";
      post(panel.dataset.actionUrl.replace("ACTION", button.dataset.autopilot), new URLSearchParams())
        .then(function (response) { return response.json().then(function (body) { return { ok: response.ok, body: body }; }); })
        .then(function (result) {
          button.disabled = false;
          if (result.ok) renderRun(result.body.run);
          else showError(byId("autopilot-error"), result.body, "That did not work.");
        })
        .catch(function () { button.disabled = false; byId("autopilot-error").textContent = "You seem to be offline; try again."; });
    });
  }

  function poll() {
    if (live) return;
    byId("connection-label").textContent = "Reconnecting… (updates every few seconds)";
    fetch(transcript.dataset.transcriptUrl + "?after=" + lastSeq, { headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.ok) showSessionStatus(response.headers.get("X-Session-Status"));
        return response.text();
      })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var arrived = false;
        holder.querySelectorAll(".msg[data-seq]").forEach(function (node) {
          var seq = Number(node.dataset.seq);
          if (seen[seq]) return;
          arrived = true;
          seen[seq] = true;
          if (node.dataset.answerId) {
            var pending = transcript.querySelector('.msg-streaming[data-answer-id="' + node.dataset.answerId + '"]');
            if (pending) pending.remove();
            delete streams[node.dataset.answerId];
          }
          insertInOrder(node, seq);
          lastSeq = Math.max(lastSeq, seq);
        });
        // Asked of the loop, not of the holder: inserting a message moved it out of the holder.
        if (arrived) { byId("transcript-empty").classList.add("d-none"); scrollToEnd(false); }
      })
      .catch(function () { /* offline: try again on the next tick */ });
    // What the socket would have said besides messages: the autonomous run's panel and the emerging themes.
    fetch(transcript.dataset.liveUrl, { headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (!state || live) return;
        renderRun(state.run);
        renderLiveThemes(state.live_themes);
      })
      .catch(function () { /* offline: try again on the next tick */ });
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
      body: body
    });
  }

  function setupComposer() {
    var form = byId("composer");
    if (!form) return;
    var text = byId("composer-text"), error = byId("composer-error"), menu = byId("mention-menu");
    var participants = Array.prototype.map.call(document.querySelectorAll(".participant"), function (li) {
      return { handle: li.dataset.handle, name: li.dataset.name };
    });
    var active = 0, matches = [];

    function closeMenu() { menu.classList.add("d-none"); matches = []; }

    // What follows "@" while typing a name: letters in any script, digits, and the dots, hyphens and
    // apostrophes that names carry ("@Dr.", "@Zoë", "@O'Brien"), as the server reads mentions.
    var typing = /(^|[\s(\["'“‘])@([\p{L}\p{N}.'’-]*)$/u;

    // Case, accents and punctuation do not count when matching a name ("zoe" finds "Zoë").
    function fold(value) {
      return String(value || "").normalize("NFKD").replace(/[^\p{L}\p{N}]/gu, "").toLowerCase();
    }

    function currentMention() {
      var m = text.value.slice(0, text.selectionStart).match(typing);
      return m ? m[2] : null;
    }

    function choose(item) {
      var caret = text.selectionStart;
      // The handle the server gave this participant: one token it reads back to exactly them.
      var before = text.value.slice(0, caret).replace(/@[\p{L}\p{N}.'’-]*$/u, "@" + item.handle + " ");
      text.value = before + text.value.slice(caret);
      text.setSelectionRange(before.length, before.length);
      closeMenu();
      text.focus();
    }

    function showMenu(query) {
      var q = fold(query);
      matches = participants.filter(function (p) {
        return fold(p.handle).indexOf(q) === 0 || fold(p.name).indexOf(q) >= 0;
      });
      if (!matches.length) { closeMenu(); return; }
      active = 0;
      menu.innerHTML = "";
      matches.forEach(function (p, index) {
        var item = document.createElement("button");
        item.type = "button";
        item.className = "list-group-item list-group-item-action small" + (index === 0 ? " active" : "");
        item.setAttribute("role", "option");
        item.textContent = "@" + p.handle + " — " + p.name;
        item.addEventListener("mousedown", function (event) { event.preventDefault(); choose(p); });
        menu.appendChild(item);
      });
      menu.classList.remove("d-none");
    }

    text.addEventListener("input", function () {
      var query = currentMention();
      if (query === null) closeMenu(); else showMenu(query);
    });
    text.addEventListener("keydown", function (event) {
      if (matches.length) {
        if (event.key === "ArrowDown" || event.key === "ArrowUp") {
          event.preventDefault();
          active = (active + (event.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
          menu.querySelectorAll(".list-group-item").forEach(function (node, index) { node.classList.toggle("active", index === active); });
          return;
        }
        if (event.key === "Enter" || event.key === "Tab") { event.preventDefault(); choose(matches[active]); return; }
        if (event.key === "Escape") { closeMenu(); return; }
      }
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.textContent = "";
      if (!text.value.trim()) { error.textContent = "Write a question or a comment first."; return; }
      var send = byId("composer-send");
      send.disabled = true;
      post(form.action, new FormData(form))
        .then(function (response) {
          return response.json().then(function (body) { return { ok: response.ok, body: body }; });
        })
        .then(function (result) {
          if (result.ok) { text.value = ""; if (!live) poll(); }
          else showError(error, result.body, "The message was not sent.");
        })
        .catch(function () { error.textContent = "You seem to be offline. Your message was not sent; try again."; })
        .finally(function () { send.disabled = false; });
    });
  }

  function setupRetry() {
    transcript.addEventListener("click", function (event) {
      var button = event.target.closest("[data-retry-message]");
      if (!button) return;
      button.disabled = true;
      button.textContent = "Retrying…";
      post(transcript.dataset.retryUrl.replace("/0/", "/" + button.dataset.retryMessage + "/"), new URLSearchParams());
    });
    transcript.addEventListener("submit", function (event) {
      var form = event.target.closest("form");
      if (!form || form.action.indexOf("/retry/") < 0) return;
      event.preventDefault();
      var button = form.querySelector("button");
      if (button) { button.disabled = true; button.textContent = "Retrying…"; }
      post(form.action, new FormData(form));
    });
  }

  // A long session's page renders its latest messages; earlier ones load on demand, above them, without
  // moving what is on screen. ``from``: load everything from that message on (a link to an earlier one).
  function loadEarlier(from) {
    var holder = byId("transcript-earlier");
    if (!holder) return Promise.resolve();
    var button = holder.querySelector("button");
    var problem = holder.querySelector("[role=alert]");
    button.disabled = true;
    problem.classList.add("d-none");
    var url = transcript.dataset.transcriptUrl + "?before=" + encodeURIComponent(button.dataset.before) +
      (from ? "&from=" + encodeURIComponent(from) : "");
    var left = 0, first = button.dataset.before;
    return fetch(url, { headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        left = Number(response.headers.get("X-Earlier") || 0);
        first = response.headers.get("X-First-Seq") || first;
        return response.text();
      })
      .then(function (html) {
        var fromBottom = transcript.scrollHeight - transcript.scrollTop;
        var box = document.createElement("div");
        box.innerHTML = html;
        var nodes = [];
        box.querySelectorAll(".msg[data-seq]").forEach(function (node) {
          var seq = Number(node.dataset.seq);
          if (seen[seq]) return;
          seen[seq] = true;
          nodes.push(node);
        });
        holder.after.apply(holder, nodes);
        transcript.scrollTop = transcript.scrollHeight - fromBottom;
        if (left > 0) {
          button.dataset.before = first;
          button.lastChild.textContent = "Show earlier messages (" + left + ")";
          button.disabled = false;
        } else {
          holder.remove();
        }
      })
      .catch(function () {
        button.disabled = false;
        problem.classList.remove("d-none");
      });
  }

  function showMessage(target) {
    transcript.scrollTop += target.getBoundingClientRect().top - transcript.getBoundingClientRect().top
      - (transcript.clientHeight - target.offsetHeight) / 2;
    target.classList.add("msg-linked");
  }

  // #msg-<n>: that message, loading the earlier ones up to it first when it is not on the page yet.
  function goToMessage(hash) {
    if (!/^#msg-\d+$/.test(hash)) return false;
    var target = document.getElementById(hash.slice(1));
    if (target) { showMessage(target); return true; }
    if (!byId("transcript-earlier")) return false;
    loadEarlier(hash.slice(5)).then(function () {
      var loaded = document.getElementById(hash.slice(1));
      if (loaded) showMessage(loaded);
    });
    return true;
  }

  function setupEarlier() {
    var holder = byId("transcript-earlier");
    if (holder) holder.querySelector("button").addEventListener("click", function () { loadEarlier(null); });
    window.addEventListener("hashchange", function () { goToMessage(window.location.hash); });
    document.addEventListener("click", function (event) {
      var link = event.target.closest('a[href^="#msg-"]');
      if (link && goToMessage(link.getAttribute("href"))) {
        event.preventDefault();
        history.replaceState(null, "", link.getAttribute("href"));
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    transcript = byId("transcript");
    if (!transcript) return;
    csrf = document.querySelector('meta[name="csrf-token"]').content;
    lastSeq = Number(transcript.dataset.lastSeq || 0);
    transcript.querySelectorAll(".msg[data-seq]").forEach(function (node) { seen[Number(node.dataset.seq)] = true; });
    // A report quote links to #msg-<n>: show that message, not the end of the transcript.
    if (!goToMessage(window.location.hash)) scrollToEnd(true);
    setupEarlier();
    setupComposer();
    setupRetry();
    setupAutopilot();
    if (window.CohortaSocket) {
      socket = new window.CohortaSocket(transcript.dataset.socket, {
        onOpen: function (socket) { live = true; socket.send({ type: "hello", last_seq: lastSeq }); },
        onClose: function () { live = false; byId("connection-label").textContent = "Reconnecting…"; },
        onMessage: onSocketMessage
      });
    }
    window.setInterval(poll, 2500);
    // Group messages are at-most-once: if a live answer stalls, ask for anything missed by sequence.
    window.setInterval(function () {
      if (live && socket && transcript.querySelector(".msg-streaming")) {
        var idle = Date.now() - lastEventAt;
        if (idle > 8000) { lastEventAt = Date.now(); socket.send({ type: "hello", last_seq: lastSeq }); }
      }
    }, 4000);
  });
})();
