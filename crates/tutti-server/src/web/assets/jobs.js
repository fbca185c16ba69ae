// tutti jobs pages: the "Run now" form's shape (flat fields → the JSON of
// POST /api/v1/runs, as `tutti run` builds it) and the manifest editor (line-number
// gutter, validate with ?dry_run=true, save, errors placed at their line and column).
// Text from the server is inserted with textContent only.
"use strict";

(function () {
  // ---- Run form -----------------------------------------------------------------------
  function names(text) {
    return String(text || "").split(/[\s,]+/).filter(Boolean);
  }

  // "90", "90s", "5m", "1h", "2d" → seconds; null when blank; NaN when unreadable.
  function parseSeconds(text) {
    const value = String(text || "").trim().toLowerCase();
    if (!value) return null;
    const match = /^(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d)?$/.exec(value);
    if (!match) return NaN;
    const unit = { s: 1, sec: 1, secs: 1, m: 60, min: 60, mins: 60, h: 3600, hr: 3600, hrs: 3600, d: 86400 }[match[2] || "s"];
    return Math.round(Number(match[1]) * unit);
  }

  // A wave is a count (10) or a percentage ("5%"), as the API reads them.
  function wave(text) {
    return /^\d+$/.test(text) ? Number(text) : text;
  }

  function numberOrNull(field) {
    if (!field || field.value.trim() === "") return null;
    return Number(field.value);
  }

  // The request body of POST /api/v1/runs from the run form.
  function runShape(body, form) {
    const mode = body.target || "groups";
    const targets = {
      all: mode === "all",
      groups: mode === "groups" ? names(body.groups) : [],
      agents: mode === "agents" ? names(body.agents) : [],
    };
    const request = { job_id: body.job_id, targets };
    const minutes = numberOrNull(form.elements.expire_minutes);
    if (minutes !== null && minutes > 0) {
      request.deadline = new Date(Date.now() + minutes * 60000).toISOString();
    }
    const waves = names(body.waves).map(wave);
    if (waves.length) {
      const rollout = { waves, wait_secs: parseSeconds(body.wave_wait) || 0 };
      const ratio = numberOrNull(form.elements.max_failure_ratio);
      const failures = numberOrNull(form.elements.max_failures);
      const batch = numberOrNull(form.elements.batch_size);
      if (ratio !== null) rollout.max_failure_ratio = ratio;
      if (failures !== null) rollout.max_failures = failures;
      if (batch !== null) rollout.batch_size = batch;
      request.rollout = rollout;
    }
    return request;
  }

  // What is wrong with the form before it is sent, or "".
  function runProblem(form) {
    const mode = (form.querySelector("input[name=target]:checked") || {}).value;
    if (!mode) return "Choose where to run: all agents, groups or agents.";
    if (mode === "groups" && names(form.elements.groups.value).length === 0) return "Name at least one group.";
    if (mode === "agents" && names(form.elements.agents.value).length === 0) return "Name at least one agent.";
    if (Number.isNaN(parseSeconds(form.elements.wave_wait.value))) {
      return "Wait between waves: write seconds, or a number with s, m, h or d (e.g. 5m).";
    }
    return "";
  }

  function initRunForm(form) {
    const modeFields = form.querySelectorAll("[data-target-mode]");
    function showMode() {
      const mode = (form.querySelector("input[name=target]:checked") || {}).value;
      for (const field of modeFields) field.hidden = field.dataset.targetMode !== mode;
    }
    form.addEventListener("change", (event) => {
      if (event.target.name === "target") {
        showMode();
        const input = form.querySelector("[data-target-mode=" + event.target.value + "] input");
        if (input) input.focus();
      }
    });
    // Runs before app.js's document-level handler, which only sees valid forms.
    form.addEventListener("submit", (event) => {
      const problem = runProblem(form);
      if (!problem) return;
      event.preventDefault();
      event.stopPropagation();
      const box = form.querySelector(".form-error");
      if (box) box.textContent = problem;
    });
    showMode();
  }

  // ---- Editor -------------------------------------------------------------------------
  // "line 8, column 3: …" (manifest errors) or "… at line 8 column 3" (other parsers).
  function position(message) {
    const match = /line (\d+),? column (\d+)/.exec(message || "");
    return match ? { line: Number(match[1]), column: Number(match[2]) } : null;
  }

  function errorText(message, where) {
    if (!where) return message;
    const rest = message.replace(/^line \d+, column \d+:\s*/, "").replace(/\s*at line \d+,? column \d+\s*$/, "");
    return "line " + where.line + ", column " + where.column + ": " + rest;
  }

  function initEditor(form) {
    const text = form.querySelector("textarea");
    const gutter = form.querySelector(".gutter");
    const errorBox = form.querySelector("[data-testid=editor-error]");
    const okBox = form.querySelector("[data-testid=editor-result]");
    const validate = form.querySelector("[data-action=validate]");
    const save = form.querySelector("[type=submit]");
    let errorLine = 0;

    function renderGutter() {
      const count = Math.max(1, text.value.split("\n").length);
      gutter.replaceChildren();
      for (let line = 1; line <= count; line++) {
        const span = document.createElement("span");
        span.textContent = String(line);
        if (line === errorLine) span.className = "error-line";
        gutter.appendChild(span);
        gutter.appendChild(document.createTextNode("\n"));
      }
      gutter.scrollTop = text.scrollTop;
    }

    function clearMessages() {
      errorBox.textContent = "";
      okBox.textContent = "";
      okBox.hidden = true;
      if (errorLine) { errorLine = 0; renderGutter(); }
    }

    function showError(err) {
      const message = (err.data && err.data.message) || err.message || "The request failed";
      const where = position(message);
      errorBox.textContent = errorText(message, where);
      if (!where) return;
      errorLine = where.line;
      renderGutter();
      const lines = text.value.split("\n");
      let offset = 0;
      for (let i = 0; i < Math.min(where.line - 1, lines.length); i++) offset += lines[i].length + 1;
      const lineLength = (lines[where.line - 1] || "").length;
      offset += Math.min(Math.max(where.column - 1, 0), lineLength);
      text.focus();
      text.setSelectionRange(offset, offset);
      const lineHeight = parseFloat(getComputedStyle(text).lineHeight) || 20;
      text.scrollTop = Math.max(0, (where.line - 3) * lineHeight);
      gutter.scrollTop = text.scrollTop;
    }

    function describe(applied) {
      return (applied || []).map((item) => {
        if (item.result === "created") return "Saving creates job " + item.job_id + " (version 1).";
        if (item.result === "changed") return "Saving changes job " + item.job_id + " to version " + item.version + ".";
        return "Job " + item.job_id + " is unchanged (version " + item.version + "); saving only updates its comments.";
      }).join(" ");
    }

    async function send(dryRun) {
      clearMessages();
      validate.disabled = true;
      save.disabled = true;
      try {
        const path = "/api/v1/jobs" + (dryRun ? "?dry_run=true" : "");
        const data = await window.tutti.api("POST", path, text.value, "application/yaml");
        const applied = (data && data.applied) || [];
        if (dryRun) {
          okBox.textContent = "Valid. " + describe(applied);
          okBox.hidden = false;
        } else if (applied.length) {
          window.location.assign("/jobs/" + encodeURIComponent(applied[0].job_id));
        }
      } catch (err) {
        showError(err);
      } finally {
        validate.disabled = false;
        save.disabled = false;
      }
    }

    text.addEventListener("input", () => {
      if (errorLine) errorLine = 0;
      renderGutter();
    });
    text.addEventListener("scroll", () => { gutter.scrollTop = text.scrollTop; });
    text.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        event.preventDefault();
        send(true);
      }
    });
    validate.addEventListener("click", () => send(true));
    form.addEventListener("submit", (event) => { event.preventDefault(); send(false); });
    renderGutter();
  }

  window.tutti.shapes.run = runShape;
  window.tutti.jobs = { parseSeconds, position, errorText, runShape };
  window.tutti.onload.push(() => {
    for (const form of document.querySelectorAll("form[data-testid=run-form]")) initRunForm(form);
    for (const form of document.querySelectorAll("form[data-editor]")) initEditor(form);
  });
})();
