// Pre-selection: last used (this browser) if still offered, else the server's choice
// (admin default, else first available). The choice is remembered on change.
(function () {
  var KEY = "llmcp.lastUsedModel";
  var select = document.getElementById("model-selector");
  if (!select) return;
  var lastUsed = null;
  try { lastUsed = window.localStorage.getItem(KEY); } catch (e) { /* storage disabled */ }
  if (lastUsed && select.querySelector('option[value="' + CSS.escape(lastUsed) + '"]')) {
    select.value = lastUsed;
  }
  select.addEventListener("change", function () {
    try { window.localStorage.setItem(KEY, select.value); } catch (e) { /* ignore */ }
  });
})();
