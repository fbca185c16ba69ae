// tutti run page: keeps the status badge, the counts, the outcome bar and the target
// tiles current from the run's progress events, and shows the selected target's output —
// live from the output events while it runs, the stored result once it finished.
// Everything from the server is inserted as text (textContent), never as HTML.
"use strict";

(function () {
  // Mirrors layout::target_tone on the server.
  const TONES = {
    succeeded: "ok",
    queued: "busy", delivered: "busy", running: "busy",
    skipped: "warn", expired: "warn", missed: "warn",
    failed: "bad", timed_out: "bad", killed: "bad", interrupted: "bad",
  };
  const ORDER = ["queued", "delivered", "running", "succeeded", "failed", "timed_out",
    "killed", "skipped", "interrupted", "missed", "expired"];
  const OPEN = new Set(["queued", "delivered", "running"]);
  const STATUS_TONES = { done: "ok", queued: "busy", running: "busy", killed: "bad" };
  // Live output kept per agent on this page, so switching tiles shows what arrived before:
  // the selected agent's last 512 KiB, every other agent's last 16 KiB (a run on thousands
  // of agents must not fill the browser's memory).
  const MAX_BUFFER = 512 * 1024;
  const MAX_OTHER_BUFFER = 16 * 1024;
  const SVG = "http://www.w3.org/2000/svg";

  function label(state) { return state.replace(/_/g, " "); }

  function thousands(n) { return Number(n).toLocaleString("en-US"); }

  function init() {
    const root = document.querySelector("[data-run]");
    if (!root) return;
    const runId = root.dataset.run;
    const statusBadge = root.querySelector("[data-testid=run-status]");
    const countsBox = root.querySelector("[data-testid=run-counts]");
    const totalBox = root.querySelector("[data-testid=run-total]");
    const bar = root.querySelector(".outcome-wide svg");
    const killButton = root.querySelector("[data-testid=kill-run]");
    const panel = {
      agent: document.getElementById("output-agent"),
      status: document.getElementById("output-status"),
      full: document.getElementById("output-full"),
      hint: document.getElementById("output-hint"),
      out: document.getElementById("output"),
      errBox: document.getElementById("output-stderr-box"),
      err: document.getElementById("output-stderr"),
    };
    const buffers = new Map();
    let status = root.dataset.status;
    let selected = null;
    let selectToken = 0;
    let progress = null;
    let output = null;

    const tiles = new Map();
    for (const tile of root.querySelectorAll("button.target")) tiles.set(tile.dataset.agent, tile);
    for (const tile of tiles.values()) {
      if (tile.getAttribute("aria-pressed") === "true") selected = tile.dataset.agent;
    }

    // ---- Status, counts, bar ----------------------------------------------------------
    function setStatus(next) {
      if (!statusBadge || !next) return;
      status = next;
      root.dataset.status = next;
      statusBadge.textContent = next;
      statusBadge.className = "badge " + (STATUS_TONES[next] || "muted");
      if (killButton && (next === "done")) killButton.hidden = true;
    }

    function setCounts(counts) {
      let total = 0;
      let open = 0;
      const parts = { ok: 0, bad: 0, warn: 0, busy: 0 };
      countsBox.replaceChildren();
      for (const state of ORDER) {
        const n = counts[state] || 0;
        if (!n) continue;
        total += n;
        if (OPEN.has(state)) open += n;
        parts[TONES[state]] += n;
        const badge = document.createElement("span");
        badge.className = "badge " + TONES[state] + " state-" + state;
        badge.dataset.state = state;
        badge.dataset.count = String(n);
        badge.textContent = label(state) + " " + thousands(n);
        countsBox.appendChild(badge);
      }
      if (totalBox) totalBox.textContent = thousands(total);
      drawBar(parts, total);
      // The server derives the status the same way; `done` events confirm it.
      if (status !== "killed") {
        if (open === 0 && total > 0) setStatus("done");
        else if (total > (counts.queued || 0)) setStatus("running");
      }
    }

    function drawBar(parts, total) {
      if (!bar) return;
      for (const rect of bar.querySelectorAll("rect:not(.seg-empty)")) rect.remove();
      const text = parts.ok + " succeeded, " + parts.bad + " failed, " + parts.warn +
        " skipped or expired, " + parts.busy + " open of " + total;
      bar.setAttribute("aria-label", text);
      const title = bar.querySelector("title");
      if (title) title.textContent = text;
      if (!total) return;
      let x = 0;
      for (const [tone, n] of [["ok", parts.ok], ["bad", parts.bad], ["warn", parts.warn], ["busy", parts.busy]]) {
        if (!n) continue;
        const width = 100 * n / total;
        const rect = document.createElementNS(SVG, "rect");
        rect.setAttribute("class", "seg-" + tone);
        rect.setAttribute("x", x.toFixed(2));
        rect.setAttribute("y", "0");
        rect.setAttribute("width", width.toFixed(2));
        rect.setAttribute("height", bar.viewBox.baseVal.height || 8);
        bar.appendChild(rect);
        x += width;
      }
    }

    // ---- Tiles ------------------------------------------------------------------------
    function setTile(change) {
      const tile = tiles.get(change.agent_id);
      if (!tile) return;
      const before = tile.dataset.state;
      tile.dataset.state = change.state;
      tile.classList.remove("tone-ok", "tone-busy", "tone-warn", "tone-bad");
      tile.classList.add("tone-" + (TONES[change.state] || "busy"));
      tile.title = change.agent_id + ": " + change.state + (change.reason ? " (" + change.reason + ")" : "");
      tile.querySelector(".target-state").textContent =
        label(change.state) + (change.reason ? " (" + change.reason + ")" : "");
      tile.querySelector(".target-exit").textContent =
        change.exit_code === null || change.exit_code === undefined ? "" : " · exit " + change.exit_code;
      const duration = tile.querySelector(".target-duration");
      if (change.state === "running" && !tile.dataset.started) {
        tile.dataset.started = new Date().toISOString();
        duration.textContent = "";
      } else if (!OPEN.has(change.state) && tile.dataset.started && OPEN.has(before)) {
        duration.textContent = " · " + seconds(Date.now() - new Date(tile.dataset.started).getTime());
      }
      if (change.agent_id === selected && OPEN.has(before) && !OPEN.has(change.state)) {
        showStored(change.agent_id, change.state, change.reason);
      }
    }

    function seconds(millis) {
      if (millis < 1000) return Math.max(0, millis) + " ms";
      if (millis < 60000) return (millis / 1000).toFixed(1) + " s";
      return Math.floor(millis / 60000) + " min " + Math.floor((millis % 60000) / 1000) + " s";
    }

    // ---- Output panel -----------------------------------------------------------------
    function select(agent) {
      selected = agent;
      for (const tile of tiles.values()) {
        tile.setAttribute("aria-pressed", tile.dataset.agent === agent ? "true" : "false");
      }
      const url = new URL(window.location.href);
      url.searchParams.set("agent", agent);
      window.history.replaceState(null, "", url.pathname + url.search);
      panel.agent.textContent = agent;
      panel.hint.hidden = true;
      panel.full.hidden = false;
      panel.full.href = "/runs/" + encodeURIComponent(runId) + "?agent=" + encodeURIComponent(agent) + "#output-panel";
      const tile = tiles.get(agent);
      const state = tile ? tile.dataset.state : "";
      if (OPEN.has(state)) showLive(agent, state); else showStored(agent, state, "");
    }

    function setStderr(text) {
      panel.err.textContent = text || "";
      panel.errBox.hidden = !text;
    }

    function setPanelStatus(state, exitCode, note) {
      panel.status.replaceChildren();
      if (state) {
        const badge = document.createElement("span");
        badge.className = "badge " + (TONES[state] || "muted") + " state-" + state;
        badge.dataset.state = state;
        badge.textContent = label(state);
        panel.status.appendChild(badge);
      }
      const extra = [];
      if (exitCode !== null && exitCode !== undefined) extra.push("exit " + exitCode);
      if (note) extra.push(note);
      if (extra.length) {
        const span = document.createElement("span");
        span.className = "muted";
        span.textContent = " " + extra.join(" · ");
        panel.status.appendChild(span);
      }
    }

    function showLive(agent, state) {
      selectToken++;
      setPanelStatus(state, null, "live");
      panel.out.textContent = buffers.get(agent) || "";
      if (!panel.out.textContent) panel.out.textContent = state === "running" ? "" : "Waiting for the agent to start…";
      panel.out.dataset.live = "true";
      setStderr("");
      openOutput();
    }

    async function showStored(agent, state, reason) {
      const token = ++selectToken;
      delete panel.out.dataset.live;
      setPanelStatus(state, null, "loading…");
      try {
        const data = await window.tutti.api("GET", "/api/v1/runs/" + encodeURIComponent(runId) +
          "/results/" + encodeURIComponent(agent));
        if (token !== selectToken) return;
        const result = data.result || {};
        setPanelStatus((result.status && result.status.state) || state, result.exit_code, "");
        panel.out.textContent = (data.stdout_full && data.stdout_full.text) || "";
        if (!panel.out.textContent) panel.out.textContent = "(no standard output)";
        setStderr(data.stderr_full && data.stderr_full.text);
      } catch (err) {
        if (token !== selectToken) return;
        setPanelStatus(state, null, "");
        setStderr("");
        panel.out.textContent = err.status === 404
          ? "No result from this agent" + (reason ? " (" + reason + ")" : "") + "."
          : "Cannot load the output: " + err.message;
      }
    }

    function appendOutput(chunk) {
      if (!tiles.has(chunk.agent_id)) return;
      const text = String(chunk.text || "");
      const cap = chunk.agent_id === selected ? MAX_BUFFER : MAX_OTHER_BUFFER;
      let buffer = (buffers.get(chunk.agent_id) || "") + text;
      if (buffer.length > cap) buffer = buffer.slice(buffer.length - cap);
      buffers.set(chunk.agent_id, buffer);
      if (chunk.agent_id !== selected || panel.out.dataset.live !== "true") return;
      const atBottom = panel.out.scrollHeight - panel.out.scrollTop - panel.out.clientHeight < 24;
      if (panel.out.textContent === "Waiting for the agent to start…") panel.out.textContent = "";
      if (panel.out.textContent.length + text.length > MAX_BUFFER) {
        panel.out.textContent = buffer; // keep the panel as bounded as the buffer
      } else {
        panel.out.appendChild(document.createTextNode(text));
      }
      if (atBottom) panel.out.scrollTop = panel.out.scrollHeight;
    }

    // ---- Event streams ----------------------------------------------------------------
    function parse(event) {
      try { return JSON.parse(event.data); } catch (_) { return null; }
    }

    function openOutput() {
      if (output || status === "done") return;
      output = new EventSource("/api/v1/runs/" + encodeURIComponent(runId) + "/output");
      output.addEventListener("output", (event) => { const chunk = parse(event); if (chunk) appendOutput(chunk); });
    }

    function openProgress() {
      progress = new EventSource("/api/v1/runs/" + encodeURIComponent(runId) + "/progress");
      progress.addEventListener("error", () => {
        // EventSource retries by itself; it gives up (CLOSED) on e.g. an expired session.
        if (progress.readyState === EventSource.CLOSED) {
          window.tutti.toast("Live updates stopped; reload the page to see the latest state.", true);
        }
      });
      progress.addEventListener("target", (event) => { const change = parse(event); if (change) setTile(change); });
      progress.addEventListener("counts", (event) => { const counts = parse(event); if (counts) setCounts(counts); });
      progress.addEventListener("done", (event) => {
        const data = parse(event);
        // The server ends the stream after `done`; closing stops the browser reconnecting.
        progress.close();
        if (output) { output.close(); output = null; }
        if (data && data.status) setStatus(data.status);
        if (killButton) killButton.hidden = true;
      });
    }

    // ---- Wiring -----------------------------------------------------------------------
    root.addEventListener("click", (event) => {
      const tile = event.target.closest("button.target");
      if (!tile) return;
      event.preventDefault();
      select(tile.dataset.agent);
    });

    const open = Number(root.dataset.open || "0");
    if (open > 0) {
      openProgress();
      openOutput();
    }
    if (selected) {
      const tile = tiles.get(selected);
      if (tile && OPEN.has(tile.dataset.state)) showLive(selected, tile.dataset.state);
    }
  }

  window.tutti.onload.push(init);
})();
