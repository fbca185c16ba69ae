// Settings page. Secrets the API returns once (API and enrollment tokens, generated
// passwords, recovery codes, the TOTP key) are shown in reveal boxes with textContent,
// never as HTML. Also: the repeated-password check, two-factor setup, password resets.
"use strict";

(function () {
  const tutti = window.tutti;

  // Fills the reveal box `id` (see settings/mod.rs `reveal`) and shows it.
  function reveal(id, text, title) {
    const box = document.getElementById(id + "-box");
    const target = document.getElementById(id);
    if (!box || !target) return;
    target.textContent = text;
    const heading = document.getElementById(id + "-title");
    if (title && heading) heading.textContent = title;
    box.hidden = false;
    box.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function onDone(selector, handler) {
    for (const form of document.querySelectorAll(selector)) {
      form.addEventListener("tutti:done", (event) => handler(form, event.detail || {}));
    }
  }

  onDone('[data-testid="token-form"]', (form, data) => {
    reveal("api-token", data.token, "Your new API token “" + data.name + "” (" + data.role + ")");
    form.reset();
  });

  onDone('[data-testid="account-form"]', (form, data) => {
    if (!data.initial_password) { window.location.reload(); return; }
    const name = data.account ? data.account.username : "the new account";
    reveal("account-password", data.initial_password, "Initial password of " + name);
    form.reset();
  });

  onDone('[data-testid="enrollment-form"]', (form, data) => {
    reveal("enrollment-token", data.token);
    const command = document.getElementById("install-command");
    if (command) command.textContent = form.dataset.installTemplate.replace("{token}", data.token);
    form.reset();
  });

  onDone('[data-testid="password-form"]', (form) => form.reset());

  onDone('[data-testid="mfa-confirm-form"]', (form, data) => {
    const panel = document.getElementById("mfa-setup-panel");
    if (panel) panel.hidden = true;
    reveal("recovery-codes", (data.recovery_codes || []).join("\n"));
  });

  // The repeat field has no name, so it is never sent; a mismatch stops the submit
  // before app.js (listening on the document) sees it.
  for (const repeat of document.querySelectorAll("[data-repeat-of]")) {
    repeat.form.addEventListener("submit", (event) => {
      const original = document.getElementById(repeat.dataset.repeatOf);
      if (original && original.value !== repeat.value) {
        event.preventDefault();
        event.stopPropagation();
        const error = repeat.form.querySelector(".form-error");
        if (error) error.textContent = "The two new passwords differ.";
        repeat.focus();
      }
    });
  }

  async function setUpMfa(button) {
    button.disabled = true;
    try {
      const data = await tutti.api("POST", "/api/v1/auth/mfa/setup", {});
      document.getElementById("mfa-secret").textContent = data.secret;
      document.getElementById("mfa-url").textContent = data.otpauth_url;
      document.getElementById("mfa-setup-panel").hidden = false;
      button.hidden = true;
      document.getElementById("mfa-code").focus();
    } catch (err) {
      tutti.toast(err.message, true);
    } finally {
      button.disabled = false;
    }
  }

  async function resetPassword(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    const name = button.dataset.resetPassword;
    button.disabled = true;
    try {
      const path = "/api/v1/accounts/" + encodeURIComponent(name) + "/password-reset";
      const data = await tutti.api("POST", path, {});
      reveal("account-password", data.initial_password, "New password of " + name);
    } catch (err) {
      tutti.toast(err.message, true);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("click", (event) => {
    const setup = event.target.closest("[data-mfa-setup]");
    if (setup) { setUpMfa(setup); return; }
    const reset = event.target.closest("[data-reset-password]");
    if (reset) { resetPassword(reset); return; }
    if (event.target.closest("[data-reload]")) window.location.reload();
  });
})();
