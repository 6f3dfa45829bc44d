// The budget form shows only the choice its "For" needs: the group, the person or the token.
// Without this script every choice shows, and the server still checks the one that counts.
(function () {
  var FIELDS = { group: "group", person: "user", token: "token" };
  function update(form) {
    var scope = form.querySelector("select[name=scope]");
    if (!scope) return;
    Object.keys(FIELDS).forEach(function (value) {
      var select = form.querySelector("select[name=" + FIELDS[value] + "]");
      if (select) select.closest(".field").hidden = scope.value !== value;
    });
  }
  function init(root) {
    root.querySelectorAll("form[data-budget-form]").forEach(update);
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-budget-form]");
    if (form && event.target.name === "scope") update(form);
  });
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });
})();
