// Small behaviours of the page chrome, kept out of the HTML so that a Content-Security-Policy
// without 'unsafe-inline' allows them: copy buttons, the language switch, the user menu.
(function () {
  "use strict";

  function say(button, text) {
    var status = document.getElementById(button.dataset.copy + "-status");
    if (status) { status.textContent = text; }
  }

  // Fallback for browsers without the Clipboard API (or pages not served over HTTPS):
  // select the text and ask the browser to copy the selection.
  function copyBySelection(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    return copied;
  }

  function copy(button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source) { return; }
    var text = source.textContent.trim();
    var done = function () { say(button, button.dataset.copied); };
    var fallback = function () {
      if (copyBySelection(source)) { done(); } else { say(button, button.dataset.copyFailed); }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else {
      fallback();
    }
  }

  function closeMenu(menu, focusSummary) {
    if (!menu.open) { return; }
    menu.open = false;
    if (focusSummary) { menu.querySelector("summary").focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    // Copy buttons only work with script, so they are hidden until it runs.
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { copy(button); });
    });

    // The language changes when its button is pressed, or on Enter in the list; moving
    // through the options with the arrow keys no longer reloads the page.
    document.querySelectorAll("form.langswitch select").forEach(function (select) {
      select.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          select.form.requestSubmit ? select.form.requestSubmit() : select.form.submit();
        }
      });
    });
  });

  // A filter's summary says what is ticked, as the server writes it on a full page load.
  document.addEventListener("change", function (event) {
    var choices = event.target.closest && event.target.closest("details.filter-choices");
    if (!choices) { return; }
    var chosen = choices.querySelector(".filter-chosen");
    var labels = Array.prototype.map.call(choices.querySelectorAll("input:checked"), function (input) {
      return input.closest("label").textContent.trim();
    });
    chosen.textContent = labels.length ? labels.join(", ") : chosen.dataset.none;
  });

  // Drop-downs (the user menu, a filter's choices) close with Escape (focus back on their
  // button) and on a click outside them.
  var DROP_DOWNS = "details.menu[open], details.filter-choices[open]";
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    document.querySelectorAll(DROP_DOWNS).forEach(function (menu) {
      closeMenu(menu, menu.contains(document.activeElement));
    });
  });
  document.addEventListener("click", function (event) {
    document.querySelectorAll(DROP_DOWNS).forEach(function (menu) {
      if (!menu.contains(event.target)) { closeMenu(menu, false); }
    });
  });
}());
