// Pre-selection for new chats: the model this user last used in this browser, if it is still
// offered; else the server's choice (admin default, else first available). Kept per user, so
// two people sharing a browser do not inherit each other's choice. In an open chat the
// selector shows that chat's model instead.
(function () {
  var select = document.getElementById("model-selector");
  if (!select) return;
  var key = "llmcp.lastUsedModel." + (select.dataset.user || "anonymous");
  var remember = function () {
    try { window.localStorage.setItem(key, select.value); } catch (e) { /* storage disabled */ }
  };
  if (select.dataset.remember === "true") {
    var lastUsed = null;
    try { lastUsed = window.localStorage.getItem(key); } catch (e) { /* storage disabled */ }
    if (lastUsed && select.querySelector('option[value="' + CSS.escape(lastUsed) + '"]')) {
      select.value = lastUsed;
    }
  }
  select.addEventListener("change", remember);
  var form = select.closest("form");
  if (form) form.addEventListener("submit", remember);
})();
