// The provider form's key policy, explained as the checkboxes change (no round trip), and the
// one invalid combination prevented: "fallback" only means something when both key sources are
// on, so it is disabled otherwise. The server validates the same rule on save.
(function () {
  function update(fieldset) {
    var table = document.getElementById(fieldset.dataset.policy);
    if (!table) return;
    var boxes = fieldset.querySelectorAll("input[type=checkbox]");
    if (boxes.length < 3) return;
    var central = boxes[0], user = boxes[1], fallback = boxes[2];
    var both = central.checked && user.checked;
    fallback.disabled = !both;
    if (!both) fallback.checked = false;
    fallback.closest(".field").classList.toggle("unavailable", !both);
    var key = [central, user, fallback].map(function (b) { return b.checked ? "1" : "0"; }).join("");
    var entry = JSON.parse(table.textContent)[key];
    var summary = fieldset.querySelector("[data-policy-summary]");
    var unused = fieldset.querySelector("[data-policy-unused]");
    summary.replaceChildren(document.createElement("strong"));
    summary.firstChild.textContent = entry.summary;
    summary.classList.toggle("error-text", !entry.valid);
    unused.textContent = entry.unused;
    unused.hidden = !entry.unused;
  }
  function init(root) {
    root.querySelectorAll("fieldset[data-policy]").forEach(update);
  }
  document.addEventListener("change", function (event) {
    var fieldset = event.target.closest && event.target.closest("fieldset[data-policy]");
    if (fieldset) update(fieldset);
  });
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.target); });
})();
