// tutti dashboard script. Pages are rendered by the server; this file adds what needs a
// browser: actions through the JSON API (with the session's CSRF token), live run
// progress and output over server-sent events, relative times, the theme switch.
// Text from the server is always inserted with textContent, never as HTML.
"use strict";

(function () {
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : null;

  // ---- API -------------------------------------------------------------------------
  async function api(method, path, body, contentType) {
    const headers = { Accept: "application/json" };
    if (csrf) headers["x-csrf-token"] = csrf;
    let payload;
    if (body !== undefined && body !== null) {
      if (typeof body === "string") {
        headers["Content-Type"] = contentType || "text/plain";
        payload = body;
      } else {
        headers["Content-Type"] = "application/json";
        payload = JSON.stringify(body);
      }
    }
    const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
    let data = null;
    const text = await response.text();
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = { message: text }; }
    }
    if (!response.ok) {
      const error = new Error((data && (data.message || data.error)) || response.status + " " + response.statusText);
      error.status = response.status;
      error.data = data;
      throw error;
    }
    return data;
  }

  function toast(message, bad) {
    const box = document.querySelector("[data-toast]");
    if (!box) return;
    const item = document.createElement("div");
    if (bad) item.className = "bad";
    item.textContent = message;
    box.appendChild(item);
    setTimeout(() => item.remove(), bad ? 8000 : 3500);
  }

  // "/runs/{run_id}" filled from a response object.
  function fill(template, data) {
    return template.replace(/\{([a-z_.]+)\}/g, (_, key) => {
      let value = data;
      for (const part of key.split(".")) value = value == null ? undefined : value[part];
      return encodeURIComponent(value == null ? "" : String(value));
    });
  }

  // Sets body[a][b] = value for a field named "a.b".
  function setPath(target, name, value) {
    const parts = name.split(".");
    let node = target;
    for (let i = 0; i < parts.length - 1; i++) {
      if (typeof node[parts[i]] !== "object" || node[parts[i]] === null) node[parts[i]] = {};
      node = node[parts[i]];
    }
    node[parts[parts.length - 1]] = value;
  }

  // A form's fields as JSON. data-type on a field: number, bool, list (comma or space
  // separated), json, raw (the body as text). Empty optional fields are left out.
  function formBody(form) {
    const raw = form.querySelector("[data-type=raw]");
    if (raw) return raw.value;
    const body = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled) continue;
      if ((field.type === "radio") && !field.checked) continue;
      const type = field.dataset.type || "text";
      let value;
      if (field.type === "checkbox") {
        value = field.checked;
      } else if (type === "number") {
        if (field.value.trim() === "") continue;
        value = Number(field.value);
      } else if (type === "list") {
        value = field.value.split(/[\s,]+/).filter(Boolean);
        if (value.length === 0 && field.dataset.optional !== undefined) continue;
      } else if (type === "json") {
        if (field.value.trim() === "") continue;
        try { value = JSON.parse(field.value); } catch (err) { throw new Error(field.name + ": invalid JSON (" + err.message + ")"); }
      } else if (type === "datetime") {
        if (field.value.trim() === "") continue;
        const date = new Date(field.value);
        if (Number.isNaN(date.getTime())) throw new Error(field.name + ": not a date and time");
        value = date.toISOString();
      } else {
        if (field.value === "" && field.dataset.optional !== undefined) continue;
        value = field.value;
      }
      setPath(body, field.name, value);
    }
    return body;
  }

  async function submitForm(form, event) {
    event.preventDefault();
    const [method, pathTemplate] = form.dataset.api.split(" ");
    const errorBox = form.querySelector(".form-error");
    if (errorBox) errorBox.textContent = "";
    const submit = form.querySelector("[type=submit]");
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    let body;
    try { body = formBody(form); } catch (err) {
      if (errorBox) errorBox.textContent = err.message; else toast(err.message, true);
      return;
    }
    if (form.dataset.shape && window.tutti.shapes[form.dataset.shape]) {
      body = window.tutti.shapes[form.dataset.shape](body, form);
    }
    const path = fill(pathTemplate, body);
    if (submit) submit.disabled = true;
    let leaving = false;
    try {
      const data = await api(method, path, body, form.dataset.contentType);
      form.dispatchEvent(new CustomEvent("tutti:done", { detail: data }));
      const then = form.dataset.then || "reload";
      if (then.startsWith("go:")) {
        leaving = true;
        window.location.assign(fill(then.slice(3), data || {}));
      } else if (then === "reload") {
        leaving = true;
        window.location.reload();
      } else if (then === "stay" && form.dataset.message) {
        toast(form.dataset.message);
      }
    } catch (err) {
      if (errorBox) errorBox.textContent = err.message; else toast(err.message, true);
      form.dispatchEvent(new CustomEvent("tutti:error", { detail: err }));
    } finally {
      // While the page is being left the button stays off, so a second click cannot
      // start a second run.
      if (submit && !leaving) submit.disabled = false;
    }
  }

  // Buttons: data-api="POST /api/v1/runs/…/kill", optional data-body (JSON),
  // data-confirm, data-then ("reload" default, "go:/path").
  async function clickAction(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    const [method, path] = button.dataset.api.split(" ");
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    button.disabled = true;
    let leaving = false;
    try {
      const data = await api(method, path, body);
      const then = button.dataset.then || "reload";
      if (button.dataset.message) toast(button.dataset.message);
      leaving = then.startsWith("go:") || then === "reload";
      if (then.startsWith("go:")) window.location.assign(fill(then.slice(3), data || {}));
      else if (then === "reload") window.location.reload();
    } catch (err) {
      toast(err.message, true);
    } finally {
      if (!leaving) button.disabled = false;
    }
  }

  // ---- Times, theme, copy ---------------------------------------------------------
  function relative(iso) {
    const then = new Date(iso).getTime();
    if (Number.isNaN(then)) return null;
    const seconds = Math.round((Date.now() - then) / 1000);
    const future = seconds < 0;
    const s = Math.abs(seconds);
    let text;
    if (s < 5) return future ? "in a moment" : "just now";
    if (s < 60) text = s + " s";
    else if (s < 3600) text = Math.round(s / 60) + " min";
    else if (s < 86400) text = Math.round(s / 3600) + " h";
    else text = Math.round(s / 86400) + " d";
    return future ? "in " + text : text + " ago";
  }

  function refreshTimes(root) {
    for (const node of (root || document).querySelectorAll("time[data-relative]")) {
      const text = relative(node.getAttribute("datetime"));
      if (text) {
        node.textContent = text;
        node.title = new Date(node.getAttribute("datetime")).toLocaleString();
      }
    }
  }

  function applyTheme(theme) {
    if (theme) document.documentElement.dataset.theme = theme;
    else delete document.documentElement.dataset.theme;
  }
  applyTheme(localStorage.getItem("tutti-theme"));

  function toggleTheme() {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : window.matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    localStorage.setItem("tutti-theme", next);
    applyTheme(next);
  }

  async function copy(button) {
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const text = source.value !== undefined && source.tagName !== "PRE" ? source.value : source.textContent;
    try {
      await navigator.clipboard.writeText(text);
      toast("Copied");
    } catch (_) {
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      toast("Press Ctrl+C to copy");
    }
  }

  // ---- Wiring ----------------------------------------------------------------------
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-api]");
    if (form) submitForm(form, event);
  });

  document.addEventListener("click", (event) => {
    const action = event.target.closest("button[data-api]");
    if (action) { event.preventDefault(); clickAction(action); return; }
    if (event.target.closest("[data-theme-toggle]")) { toggleTheme(); return; }
    const copyButton = event.target.closest("[data-copy]");
    if (copyButton) { copy(copyButton); return; }
    if (event.target.closest("[data-logout]")) {
      api("POST", "/api/v1/auth/logout", {}).finally(() => window.location.assign("/login"));
    }
  });

  // Selects that navigate (filters): <select data-autosubmit> submits its GET form.
  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-autosubmit]")) event.target.form.requestSubmit();
  });

  document.addEventListener("DOMContentLoaded", () => {
    refreshTimes();
    setInterval(refreshTimes, 15000);
    for (const init of window.tutti.onload) init();
  });

  window.tutti = { api, toast, fill, refreshTimes, shapes: {}, onload: [] };
})();
