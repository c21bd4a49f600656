// The ranking page without reloads. Every action is a plain form POST that works without this file;
// here the same POST goes through fetch() with "X-Requested-With: fetch", and the server answers with
// the next pair's HTML fragment (already escaped server-side), which replaces the old one.
// Keys: 1 2 3 4 vote, s skips, u undoes the last vote (while its window lasts), d toggles the diff,
// ? shows the keys; ignored while typing in a text box.
(function () {
  "use strict";

  const root = document.querySelector("[data-rank-root]");
  if (!root || !window.fetch || !window.FormData) return;

  let busy = false;
  let undoTimer = null;

  // The undo button lasts as long as the server's window (data-undo-left seconds), counted down here.
  function startUndoCountdown() {
    if (undoTimer) window.clearInterval(undoTimer);
    undoTimer = null;
    const form = root.querySelector("form[data-undo-left]");
    if (!form) return;
    const deadline = Date.now() + 1000 * Number(form.dataset.undoLeft || 0);
    const count = form.querySelector("[data-undo-count]");
    function tick() {
      const left = Math.ceil((deadline - Date.now()) / 1000);
      if (left <= 0) {
        window.clearInterval(undoTimer);
        undoTimer = null;
        form.remove();
        return;
      }
      if (count) count.textContent = "(" + left + " s)";
    }
    undoTimer = window.setInterval(tick, 250);
    tick();
  }

  function setBusy(on) {
    busy = on;
    root.classList.toggle("is-busy", on);
    root.setAttribute("aria-busy", on ? "true" : "false");
    root.querySelectorAll("button").forEach(function (button) {
      if (on && !button.disabled) {
        button.disabled = true;
        button.dataset.busyDisabled = "1";
      } else if (!on && button.dataset.busyDisabled) {
        button.disabled = false;
        delete button.dataset.busyDisabled;
      }
    });
  }

  function showError(text) {
    const old = root.querySelector("[data-client-error]");
    if (old) old.remove();
    const box = document.createElement("div");
    box.className = "message error";
    box.setAttribute("role", "alert");
    box.dataset.clientError = "1";
    box.textContent = text; // textContent: never parsed as HTML
    root.prepend(box);
  }

  function afterSwap() {
    // Messages from the last full page load (e.g. "signed in") are stale once the pair changes.
    document.querySelectorAll("main > .messages").forEach(function (list) {
      list.remove();
    });
    const heading = root.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    const top = root.getBoundingClientRect().top + window.scrollY - 16;
    if (window.scrollY > top) window.scrollTo({ top: Math.max(0, top) });
    startUndoCountdown();
  }

  function formBody(form, submitter) {
    const body = new FormData(form);
    // The clicked button's name=value (the choice) is not in FormData(form) everywhere.
    if (submitter && submitter.name && !body.has(submitter.name)) body.append(submitter.name, submitter.value);
    return body;
  }

  async function send(form, submitter) {
    const body = formBody(form, submitter);
    setBusy(true);
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch", "X-CSRFToken": body.get("csrfmiddlewaretoken") || "" },
      });
    } catch (err) {
      setBusy(false);
      showError("Could not reach the server. Check your connection and try again.");
      return;
    }
    if (response.redirected) {
      // Signed out meanwhile (or the terms page): let the full page show where to go.
      window.location.reload();
      return;
    }
    if (response.headers.get("X-Rank-Fragment") !== "1") {
      setBusy(false);
      showError("Something went wrong (HTTP " + response.status + "). Reload the page and try again.");
      return;
    }
    // 4xx answers carry the fragment too: the error message above the pair to look at now.
    root.innerHTML = await response.text();
    busy = false;
    root.classList.remove("is-busy");
    root.setAttribute("aria-busy", "false");
    afterSwap();
  }

  startUndoCountdown();

  root.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-fetch")) return;
    event.preventDefault();
    if (!busy) send(form, event.submitter);
  });

  // The "?" overlay listing the keys: a <dialog> outside the swapped fragment.
  const keysDialog = document.querySelector("[data-keys-dialog]");

  function showKeys() {
    if (keysDialog && !keysDialog.open && keysDialog.showModal) keysDialog.showModal();
  }

  root.addEventListener("click", function (event) {
    if (event.target instanceof Element && event.target.closest("[data-keys-open]")) showKeys();
  });

  function typing(target) {
    return target instanceof HTMLElement && (target.isContentEditable || target.closest("input, textarea, select"));
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (keysDialog && keysDialog.open) return; // the dialog handles Esc itself
    if (event.key === "?") {
      event.preventDefault();
      showKeys();
      return;
    }
    if (event.repeat || busy) return;
    const key = event.key.toLowerCase();
    if (key === "d") {
      const diff = root.querySelector("details.diff");
      if (diff) {
        diff.open = !diff.open;
        event.preventDefault();
      }
      return;
    }
    const button = root.querySelector('button[data-key="' + CSS.escape(key) + '"]');
    if (!button || button.disabled) return;
    event.preventDefault();
    button.classList.add("is-pressed");
    if (button.form.requestSubmit) button.form.requestSubmit(button);
    else button.click();
  });
})();
