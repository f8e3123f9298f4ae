// The replay page: asciinema-player on the session's asciicast, with a speed choice.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var element = document.getElementById("replay-player");
    if (!element || !window.AsciinemaPlayer) { return; }
    var speed = document.getElementById("replay-speed");
    var player = null;
    function create() {
      var at = player ? player.getCurrentTime() : 0;
      if (player) { player.dispose(); }
      player = window.AsciinemaPlayer.create(element.dataset.castUrl, element, {
        cols: parseInt(element.dataset.cols, 10) || 80, rows: parseInt(element.dataset.rows, 10) || 24,
        speed: parseFloat(speed.value) || 1, startAt: at, idleTimeLimit: 2, fit: "width", controls: true
      });
      window.filrougePlayer = player;
    }
    speed.addEventListener("change", create);
    create();
  });
})();
