/* Survey builder: show the fields that fit the question type, and fill a Likert question's labels. */
(function () {
  "use strict";
  function setUp(form) {
    var kind = form.querySelector(".js-kind");
    if (!kind) return;
    var defaults = JSON.parse(document.getElementById("survey-default-labels").textContent);
    var labels = form.querySelector("textarea[name=labels]");
    function sync(fill) {
      form.querySelectorAll(".js-for").forEach(function (el) {
        el.hidden = !el.classList.contains("js-for-" + kind.value);
      });
      form.querySelectorAll("option[data-kind]").forEach(function (opt) {
        opt.hidden = opt.dataset.kind !== kind.value;
      });
      var known = Object.values(defaults).indexOf(labels.value.trim()) !== -1;
      if (fill && defaults[kind.value] && (!labels.value.trim() || known)) labels.value = defaults[kind.value];
    }
    kind.addEventListener("change", function () { sync(true); });
    sync(false);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.js-question-form").forEach(setUp);
  });
})();
