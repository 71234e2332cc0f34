/* Survey builder: show the fields that fit the question type (filling a scale's labels and naming its
   default anchors), show what a run will cost for the panel picked (or generated), and confirm deletions. */
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
    var personaCost = parseInt(form.dataset.personaCost, 10) || 0;
    var qualityCost = parseInt(form.dataset.qualityCost, 10) || 0;
    var qualityBox = form.querySelector("input[name=check_quality]");
    var balance = parseInt(form.dataset.balance, 10) || 0;
    var maxPanel = parseInt(form.dataset.maxPanel, 10) || 0;
    var genMin = parseInt(form.dataset.generatedMin, 10) || 1;
    var genMax = parseInt(form.dataset.generatedMax, 10) || 0;
    var out = form.querySelector(".js-run-estimate");
    var folderRadio = form.querySelector("#panel-folder");
    var folderSelect = form.querySelector("select[name=folder]");
    var sampledRadio = form.querySelector("#panel-sampled");
    var sampledSelect = form.querySelector("select[name=sampled_panel]");
    var generateRadio = form.querySelector("#panel-generate");
    var generateFields = form.querySelector(".js-generate-fields");
    var sizeInput = form.querySelector("input[name=panel_size]");
    var boxes = form.querySelectorAll("input[name=personas]");
    function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
    // The quality check, when ticked, is reserved with the run: the estimate adds it.
    function checking() { return !!(qualityBox && qualityBox.checked && qualityCost); }
    function qualityPart(n) { return checking() ? " + " + plural(n * qualityCost, "credit") + " to check quality" : ""; }
    function panelSize() {
      if (sampledRadio && sampledRadio.checked) {
        var picked = sampledSelect.options[sampledSelect.selectedIndex];
        return picked ? parseInt(picked.dataset.count, 10) || 0 : 0;
      }
      if (folderRadio && folderRadio.checked) {
        var option = folderSelect.options[folderSelect.selectedIndex];
        return option ? parseInt(option.dataset.count, 10) || 0 : 0;
      }
      return Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
    }
    function generateEstimate() {
      var raw = sizeInput.value.trim();
      var n = /^\d+$/.test(raw) ? parseInt(raw, 10) : NaN;
      if (isNaN(n) || n < genMin || n > genMax) {
        return { text: "Generate " + genMin + " to " + genMax + " personas.", bad: true };
      }
      var make = n * personaCost, ask = n * unit, check = checking() ? n * qualityCost : 0;
      var total = make + ask + check;
      var text = "This run: " + plural(make, "credit") + " to generate " + plural(n, "persona") + " + " +
        plural(ask, "credit") + " to ask them" + qualityPart(n) + " = " + plural(total, "credit") + ".";
      if (total > balance) text += " You have " + balance + ": buy credits on the Billing page first.";
      return { text: text, bad: total > balance };
    }
    function update() {
      var generating = generateRadio && generateRadio.checked;
      if (generateFields) generateFields.hidden = !generating;
      var text, bad;
      if (generating) {
        var estimate = generateEstimate();
        text = estimate.text; bad = estimate.bad;
      } else {
        var n = panelSize();
        var cost = n * unit + (checking() ? n * qualityCost : 0);
        if (!n && sampledRadio && sampledRadio.checked) text = "This panel has no personas written yet: wait for it, or pick another.";
        else if (!n) text = folderRadio && folderRadio.checked ? "This folder has no personas: pick another, tick personas, or generate a panel." : "Tick the personas to ask, or generate a panel.";
        else text = "This run: " + plural(n, "respondent") + " × " + plural(unit, "credit") + qualityPart(n) + " = " + plural(cost, "credit") + ".";
        if (n && maxPanel && n > maxPanel) text += " That is more than the " + maxPanel + " a run can ask: pick fewer.";
        else if (cost > balance) text += " You have " + balance + ": buy credits on the Billing page first.";
        bad = !n || cost > balance || (maxPanel && n > maxPanel);
      }
      out.textContent = text;
      out.classList.toggle("text-danger", !!bad);
    }
    form.addEventListener("change", function (event) {
      if (event.target.name === "personas" && event.target.checked) {
        var selection = form.querySelector("#panel-selection");
        if (selection) selection.checked = true;
      }
      if (event.target.name === "folder" && folderRadio) folderRadio.checked = true;
      if (event.target.name === "sampled_panel" && sampledRadio) sampledRadio.checked = true;
      update();
    });
    form.addEventListener("input", function (event) {
      if (event.target === sizeInput) update();
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
