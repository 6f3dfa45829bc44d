// Feedback for every in-page (htmx) action, so nothing fails silently:
// - while a request runs, the button that sent it is disabled and says what it is doing;
// - a network error, a timeout or a server error shows a message in place of silence;
// - what the server says after a swap (a notice, a warning) is announced to screen readers;
// - focus moves to what changed: the error summary, the first invalid field, or the heading of
//   the updated card.
(function () {
  var ANNOUNCER_ID = "announcer";

  function announce(text) {
    var region = document.getElementById(ANNOUNCER_ID);
    if (!region || !text) return;
    region.textContent = "";
    // A fresh text node in a live region that already exists is what screen readers pick up.
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function buttonsOf(elt) {
    if (elt.tagName === "FORM") {
      return Array.prototype.slice.call(elt.querySelectorAll("button[type=submit], button:not([type])"));
    }
    return elt.tagName === "BUTTON" || elt.tagName === "A" ? [elt] : [];
  }

  function formOf(elt) {
    return elt.tagName === "FORM" ? elt : elt.closest("form");
  }

  function setBusy(elt, busy) {
    var form = formOf(elt) || elt;
    var label = form.dataset.busy || elt.dataset.busy || "Saving…";
    buttonsOf(elt).forEach(function (button) {
      if (busy) {
        button.dataset.idleHtml = button.innerHTML;
        button.setAttribute("aria-disabled", "true");
        button.classList.add("busy");
        if (button.tagName === "BUTTON") button.disabled = true;
        button.textContent = label;
      } else if (button.dataset.idleHtml !== undefined) {
        button.innerHTML = button.dataset.idleHtml;
        delete button.dataset.idleHtml;
        button.removeAttribute("aria-disabled");
        button.classList.remove("busy");
        if (button.tagName === "BUTTON") button.disabled = false;
      }
    });
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function clearProblem(elt) {
    var container = formOf(elt) || elt;
    var previous = container.parentNode && container.parentNode.querySelector("[data-request-problem]");
    if (previous) previous.remove();
  }

  function showProblem(elt, reason, verb) {
    var form = formOf(elt) || elt;
    var reading = verb === "get";
    var what = elt.dataset.fail || form.dataset.fail || (reading ? "Could not open this" : "Could not save");
    var after = reading ? "" : form.dataset.failAfter;
    if (after === undefined) after = "Your changes were not saved.";
    var message = document.createElement("p");
    message.className = "callout error";
    message.setAttribute("role", "alert");
    message.setAttribute("data-request-problem", "");
    message.setAttribute("tabindex", "-1");
    message.textContent = (what + ": " + reason + " " + after).trim();
    clearProblem(elt);
    if (form.isConnected) {
      form.parentNode.insertBefore(message, form);
      message.focus();
    } else {
      var main = document.querySelector("main");
      main.insertBefore(message, main.firstChild);
      message.focus();
    }
  }

  function reasonFor(event) {
    if (event.type === "htmx:timeout") return "the server took too long to answer.";
    if (event.type === "htmx:sendError") return "the server did not answer.";
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status === 403) return "you are signed out or no longer allowed to do this. Reload the page.";
    if (status === 404) return "what you were changing no longer exists. Reload the page.";
    if (status === 429) return "too many requests; wait a moment and try again.";
    if (status >= 500) return "the server hit an error (" + status + "). Try again in a moment.";
    return "the server refused the request (" + status + ").";
  }

  function focusAfterSwap(root) {
    var target = root.querySelector("[data-error-summary]") ||
      root.querySelector("[aria-invalid=true]") ||
      root.querySelector("h2[tabindex], h3[tabindex]");
    if (target) target.focus({ preventScroll: false });
  }

  function noticesIn(root) {
    var texts = [];
    root.querySelectorAll(".notice, .messages li, .test-result, [role=status]").forEach(function (el) {
      var text = el.textContent.trim();
      if (text && texts.indexOf(text) < 0) texts.push(text);
    });
    return texts.join(" ");
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    clearProblem(elt);
    if (event.detail.requestConfig && event.detail.requestConfig.verb !== "get" || elt.tagName === "FORM") {
      setBusy(elt, true);
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    setBusy(event.detail.elt, false);
  });

  ["htmx:sendError", "htmx:timeout", "htmx:responseError"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var config = event.detail.requestConfig || {};
      showProblem(event.detail.elt, reasonFor(event), config.verb);
    });
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var config = event.detail.requestConfig || {};
    var fromUser = config.verb !== "get" || (config.elt && config.elt.tagName === "A");
    if (!fromUser) return;
    var target = event.detail.target;
    var root = target && target.isConnected ? target : (event.detail.elt && event.detail.elt.isConnected ? event.detail.elt : null);
    if (!root && target && target.id) root = document.getElementById(target.id);
    if (!root) root = document.querySelector("main");
    announce(noticesIn(root));
    focusAfterSwap(root);
  });

  // Full-page forms (no htmx): no double submits, and after a refused submit the focus goes
  // to the summary of problems or the first invalid field.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("hx-post") || form.hasAttribute("hx-get") || event.defaultPrevented) return;
    window.setTimeout(function () { setBusy(form, true); }, 0);
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[aria-busy=true]").forEach(function (form) { setBusy(form, false); });
  });
  document.addEventListener("DOMContentLoaded", function () {
    var main = document.querySelector("main");
    if (main && (main.querySelector("[data-error-summary]") || main.querySelector("[aria-invalid=true]"))) {
      focusAfterSwap(main);
    }
  });
})();
