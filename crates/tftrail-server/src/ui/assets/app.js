// tftrail web UI: the little script there is. Everything works without it.
// Times are shown in UTC; hovering one shows it in the viewer's local time.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d.getTime())) {
      el.title = d.toLocaleString() + " (local time)";
    }
  });
  // Empty filter fields are left out of the URL, so shared links stay short.
  var f = document.querySelector("form.filters");
  // Coming back to the page (history), the fields are usable again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form.filters [disabled]").forEach(function (i) { i.disabled = false; });
  });
  if (f) {
    f.addEventListener("submit", function () {
      f.querySelectorAll("input, select").forEach(function (i) {
        if (!i.value) { i.disabled = true; }
      });
    });
  }
});
