// Chats: send without leaving the page, stream replies in as they are written (server-sent
// events), refresh the message list when a turn starts or ends, stop a reply.
(function () {
  var main = document.querySelector("[data-chat]");
  var composer = document.querySelector("[data-composer]");
  var statusLine = document.querySelector("[data-status-line]");
  var stopButton = document.querySelector("[data-stop]");
  var source = null;

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["x-csrftoken"]; }
    catch (e) { return ""; }
  }

  function say(text) { if (statusLine) statusLine.textContent = text; }

  function post(form) {
    return fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || "The server answered " + response.status + ".");
        return data;
      }, function () { throw new Error("The server answered " + response.status + "."); });
    });
  }

  function refresh() {
    if (!main) return Promise.resolve();
    return fetch(main.dataset.messages, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        // A reply being written may be ahead of what the server last saved: keep the longer.
        var writing = {};
        document.querySelectorAll('[data-status="streaming"]').forEach(function (el) {
          writing[el.id] = el.querySelector(".content").textContent;
        });
        var holder = document.getElementById("messages");
        if (holder) holder.outerHTML = html;
        Object.keys(writing).forEach(function (id) {
          var content = document.querySelector("#" + id + " .content");
          if (content && writing[id].length > content.textContent.length &&
              writing[id].indexOf(content.textContent) === 0) {
            content.textContent = writing[id];
          }
        });
        var running = document.querySelector('[data-status="streaming"], [data-status="active"], [data-status="queued"]');
        if (stopButton) stopButton.hidden = !running;
      });
  }

  function connect() {
    if (!main || source) return;
    source = new EventSource(main.dataset.events);
    if (stopButton) stopButton.hidden = false;
    source.addEventListener("changed", function () { refresh(); });
    source.addEventListener("delta", function (event) {
      var data = JSON.parse(event.data);
      var content = document.querySelector("#message-" + data.id + " .content");
      if (content) content.textContent += data.text; else refresh();
    });
    source.addEventListener("snapshot", function (event) {
      var data = JSON.parse(event.data);
      var content = document.querySelector("#message-" + data.id + " .content");
      if (content) content.textContent = data.content; else refresh();
    });
    source.addEventListener("title", function (event) {
      var title = JSON.parse(event.data).title;
      var heading = document.getElementById("chat-title");
      if (heading && title) { heading.textContent = title; document.title = title + " · Agents"; }
      var link = document.querySelector('.chat-list a[aria-current="page"] .chat-title');
      if (link && title) link.textContent = title;
    });
    source.addEventListener("failed", function (event) { say(JSON.parse(event.data).message); });
    source.addEventListener("idle", function () {
      source.close(); source = null; say(""); refresh();
      var badge = document.querySelector('.chat-list a[aria-current="page"] .badge');
      if (badge) badge.outerHTML = "just now";
    });
    source.onerror = function () {
      if (source) { source.close(); source = null; }
      say("Connection lost; reconnecting…");
      setTimeout(function () { say(""); connect(); }, 2000);
    };
  }

  if (composer) {
    composer.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = composer.querySelector('button[type="submit"]');
      button.disabled = true;
      say("Sending…");
      post(composer).then(function (data) {
        if (data.url) { window.location = data.url; return; }
        composer.querySelector("textarea").value = "";
        say("");
        refresh().then(connect);
      }).catch(function (error) {
        say("Not sent: " + error.message + " Your message is still in the box.");
      }).finally(function () { button.disabled = false; });
    });
    composer.querySelector("textarea").addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) composer.requestSubmit();
    });
  }

  if (stopButton) {
    stopButton.addEventListener("click", function () {
      stopButton.disabled = true;
      fetch(stopButton.dataset.stop, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
        credentials: "same-origin",
      }).then(function () { say("Stopping…"); })
        .catch(function () { say("Could not stop: the server did not answer."); })
        .finally(function () { stopButton.disabled = false; });
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("[data-chat-action]");
    if (!form) return;
    event.preventDefault();
    post(form).then(function (data) {
      if (form.hasAttribute("data-navigate") && data.url) { window.location = data.url; return; }
      refresh();
    }).catch(function (error) { say(error.message); });
  });

  if (main && (main.dataset.running === "running" || document.querySelector('[data-status="queued"]'))) {
    connect();
  }
})();
