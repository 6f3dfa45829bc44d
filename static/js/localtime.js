// Times marked data-local are written in UTC by the server; show them in the viewer's own time
// zone (the UTC time stays in the tooltip), in the form every other date here has: 7 Dec 2026,
// 16:05.
(function () {
  var format = new Intl.DateTimeFormat("en-GB", {
    day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23",
  });
  document.querySelectorAll("time[data-local]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) el.textContent = format.format(when);
  });
})();
