// Sign-in steps for /login (see web/login.rs). Uses the auth API directly: the CSRF
// token comes from the login response, since this page had no session when it loaded.
"use strict";

(function () {
  const root = document.querySelector("[data-login]");
  if (!root) return;
  // The server accepts only paths on this site; check the origin once more before leaving.
  const wanted = root.dataset.next || "/";
  const next = new URL(wanted, location.origin).origin === location.origin ? wanted : "/";
  const codeRequired = root.dataset.codeRequired;
  let csrf = null;
  let password = "";

  const steps = {};
  for (const node of root.querySelectorAll("[data-step]")) steps[node.dataset.step] = node;

  function show(name) {
    for (const [key, node] of Object.entries(steps)) node.hidden = key !== name;
    const first = steps[name].querySelector("input, button");
    if (first) first.focus();
  }

  async function call(method, path, body) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (csrf) headers["x-csrf-token"] = csrf;
    const init = { method, headers, credentials: "same-origin" };
    if (method !== "GET") init.body = JSON.stringify(body || {});
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = { message: text }; }
    if (!response.ok) {
      const error = new Error((data && data.message) || response.statusText);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function fail(form, err) {
    form.querySelector(".form-error").textContent = err.message;
  }

  function proceed(me) {
    if (me && me.required_action === "change_password") return show("change-password");
    if (me && me.required_action === "setup_mfa") return startMfa();
    window.location.assign(next);
  }

  async function startMfa() {
    try {
      const setup = await call("POST", "/api/v1/auth/mfa/setup", {});
      steps["setup-mfa"].querySelector("[data-mfa-secret]").textContent = setup.secret;
      show("setup-mfa");
    } catch (err) {
      show("setup-mfa");
      fail(steps["setup-mfa"], err);
    }
  }

  steps.password.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const button = form.querySelector("[type=submit]");
    const body = { username: form.username.value.trim(), password: form.password.value };
    if (!form.querySelector("[data-code-field]").hidden && form.code.value.trim()) body.code = form.code.value.trim();
    fail(form, { message: "" });
    button.disabled = true;
    try {
      const me = await call("POST", "/api/v1/auth/login", body);
      csrf = me.csrf_token;
      password = body.password;
      proceed(me);
    } catch (err) {
      if (err.message === codeRequired) {
        const field = form.querySelector("[data-code-field]");
        field.hidden = false;
        form.code.focus();
        fail(form, { message: "Enter the code from your authenticator app." });
      } else {
        fail(form, err);
      }
    } finally {
      button.disabled = false;
    }
  });

  // Runs one step's request with its button disabled, so a double click sends it once.
  async function busy(form, work) {
    const button = form.querySelector("[type=submit]");
    fail(form, { message: "" });
    button.disabled = true;
    try {
      await work();
    } catch (err) {
      fail(form, err);
    } finally {
      button.disabled = false;
    }
  }

  steps["change-password"].addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    if (form.new_password.value !== form.again.value) return fail(form, { message: "The two passwords differ." });
    busy(form, async () => {
      await call("POST", "/api/v1/auth/password", { current_password: password, new_password: form.new_password.value });
      password = form.new_password.value;
      proceed(await call("GET", "/api/v1/auth/me"));
    });
  });

  steps["setup-mfa"].addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    busy(form, async () => {
      const codes = await call("POST", "/api/v1/auth/mfa/confirm", { code: form.code.value.trim() });
      steps["recovery-codes"].querySelector("[data-recovery-codes]").textContent = (codes.recovery_codes || []).join("\n");
      show("recovery-codes");
    });
  });

  root.querySelector("[data-continue]").addEventListener("click", () => window.location.assign(next));

  // Already signed in (a link from elsewhere arrives without the SameSite cookie and lands
  // here, but this page's own request carries it): go on, or to what is still required.
  call("GET", "/api/v1/auth/me").then((me) => {
    csrf = me.csrf_token;
    if (!me.required_action) window.location.replace(next);
  }).catch(() => {});
})();
