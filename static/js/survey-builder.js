/* Survey builder: show the fields that fit the question type (filling a scale's labels and naming its
   default anchors), show what a run will cost for the panel picked, and confirm deletions. */
(function () {
  "use strict";
  function setUpQuestion(form) {
    var kind = form.querySelector(".js-kind");
    if (!kind) return;
    var defaults = JSON.parse(document.getElementById("survey-default-labels").textContent);
    var labels = form.querySelector("textarea[name=labels]");
    var preset = form.querySelector("select[name=anchor_preset]");
    var presetDefaults = preset && preset.dataset.defaults ? JSON.parse(preset.dataset.defaults) : {};
    function sync(fill) {
      form.querySelectorAll(".js-for").forEach(function (el) {
        el.hidden = !el.classList.contains("js-for-" + kind.value);
      });
      form.querySelectorAll("option[data-kind]").forEach(function (opt) {
        opt.hidden = opt.dataset.kind !== kind.value;
        if (opt.hidden && opt.selected) preset.value = "";
      });
      if (preset && presetDefaults[kind.value]) preset.options[0].textContent = presetDefaults[kind.value];
      var known = Object.values(defaults).indexOf(labels.value.trim()) !== -1;
      if (fill && defaults[kind.value] && (!labels.value.trim() || known)) labels.value = defaults[kind.value];
    }
    kind.addEventListener("change", function () { sync(true); });
    sync(false);
  }

  function setUpRun(form) {
    var unit = parseInt(form.dataset.unitCost, 10) || 0;
    var balance = parseInt(form.dataset.balance, 10) || 0;
    var maxPanel = parseInt(form.dataset.maxPanel, 10) || 0;
    var out = form.querySelector(".js-run-estimate");
    var folderRadio = form.querySelector("#panel-folder");
    var folderSelect = form.querySelector("select[name=folder]");
    var boxes = form.querySelectorAll("input[name=personas]");
    function panelSize() {
      if (folderRadio && folderRadio.checked) {
        var option = folderSelect.options[folderSelect.selectedIndex];
        return option ? parseInt(option.dataset.count, 10) || 0 : 0;
      }
      return Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
    }
    function update() {
      var n = panelSize();
      var cost = n * unit;
      var text;
      if (!n) text = folderRadio && folderRadio.checked ? "This folder has no personas: pick another, or tick personas." : "Tick the personas to ask.";
      else text = "This run: " + n + " respondent" + (n === 1 ? "" : "s") + " × " + unit + " credit" + (unit === 1 ? "" : "s") + " = " + cost + " credit" + (cost === 1 ? "" : "s") + ".";
      if (n && maxPanel && n > maxPanel) text += " That is more than the " + maxPanel + " a run can ask: pick fewer.";
      else if (cost > balance) text += " You have " + balance + ": buy credits on the Billing page first.";
      out.textContent = text;
      out.classList.toggle("text-danger", !n || cost > balance || (maxPanel && n > maxPanel));
    }
    form.addEventListener("change", function (event) {
      if (event.target.name === "personas" && event.target.checked && folderRadio) {
        form.querySelector("#panel-selection").checked = true;
      }
      if (event.target.name === "folder" && folderRadio) folderRadio.checked = true;
      update();
    });
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.js-question-form").forEach(setUpQuestion);
    document.querySelectorAll("form.js-run-form").forEach(setUpRun);
    document.addEventListener("submit", function (event) {
      var form = event.target.closest("form[data-confirm]");
      if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
