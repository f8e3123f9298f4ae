// Keeps a live log scrolled to its end while new lines arrive, unless the reader scrolled up.
document.addEventListener("htmx:oobBeforeSwap", function (event) {
  var log = document.getElementById("log-lines");
  if (log && event.detail.target === log) {
    log.dataset.stick = String(log.scrollHeight - log.scrollTop - log.clientHeight < 40);
  }
});
document.addEventListener("htmx:oobAfterSwap", function (event) {
  var log = document.getElementById("log-lines");
  if (log && event.detail.target === log && log.dataset.stick !== "false") {
    log.scrollTop = log.scrollHeight;
  }
});
document.addEventListener("DOMContentLoaded", function () {
  var log = document.getElementById("log-lines");
  if (log) { log.scrollTop = log.scrollHeight; }
});

// Behaviour that used to sit in inline handlers (onsubmit, onclick, onchange): the
// Content-Security-Policy allows scripts from our own files only, so pages say what they
// want with data- attributes and this file does it.
document.addEventListener("submit", function (event) {
  var message = event.target.dataset ? event.target.dataset.confirm : null;
  if (message && !window.confirm(message)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
document.addEventListener("click", function (event) {
  var filler = event.target.closest ? event.target.closest("[data-fill]") : null;
  if (filler) {
    var field = document.getElementById(filler.dataset.fill);
    if (field) { field.value = filler.dataset.context; }
  }
  var all = event.target.closest ? event.target.closest("[data-select-all]") : null;
  if (all) {
    document.querySelectorAll(all.dataset.selectAll).forEach(function (box) { box.checked = all.checked; });
  }
});
