// Keel dashboard: optional conveniences. Every page and action works without this script.
(function () {
  "use strict";

  // Select all: a header checkbox ticks every row checkbox with the same name.
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('input[type=checkbox][name="' + all.dataset.selectAll + '"]').forEach(function (box) {
        box.checked = all.checked;
      });
    });
  });

  // Confirm before a single destructive action (bulk actions get a server-side confirmation page).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  });
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.dataset.confirm)) {
        event.preventDefault();
      }
    });
  });

  // Auto-refresh, remembered per browser; paused while a form is being filled or rows are selected.
  var toggle = document.getElementById("auto-refresh");
  var interval = parseInt(document.body.dataset.refreshMs || "5000", 10);
  if (toggle) {
    toggle.checked = window.localStorage.getItem("keel.autoRefresh") === "1";
    toggle.addEventListener("change", function () {
      window.localStorage.setItem("keel.autoRefresh", toggle.checked ? "1" : "0");
    });
    window.setInterval(function () {
      if (!toggle.checked) { return; }
      var active = document.activeElement;
      var busy = active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName) && active !== toggle;
      var selected = document.querySelector('input[type=checkbox][name="ids"]:checked');
      if (!busy && !selected) { window.location.reload(); }
    }, interval);
  }
})();
