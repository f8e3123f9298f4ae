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
