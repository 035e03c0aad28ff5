// jitape's pages: the live table refreshes itself; on a recording, a click on a speaking
// segment (or a time in a list) plays the recording from there.
(function () {
  "use strict";
  var live = document.querySelector("table[data-refresh]");
  if (live) {
    var body = document.getElementById("live-rows");
    var refresh = function () {
      fetch(live.dataset.refresh, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.status === 401) { location.reload(); throw new Error("unauthorized"); }
          return r.text();
        })
        .then(function (html) {
          body.innerHTML = html;
          var n = body.querySelectorAll("tr[data-room]").length;
          document.getElementById("count").textContent = n + " recording";
          live.dataset.updated = String(Date.now());
        })
        .catch(function () {});
    };
    setInterval(refresh, 2000);
  }
  var player = document.getElementById("player");
  if (player) {
    document.addEventListener("click", function (e) {
      var t = e.target.closest("[data-t]");
      if (!t) return;
      player.currentTime = parseFloat(t.dataset.t);
      var p = player.play();
      if (p && p.catch) p.catch(function () {});
    });
    var head = document.getElementById("playhead");
    var line = document.querySelector(".timeline");
    if (head && line) {
      player.addEventListener("timeupdate", function () {
        var total = parseFloat(line.dataset.duration) || player.duration || 1;
        var f = Math.min(1, Math.max(0, player.currentTime / total));
        head.style.display = "block";
        head.style.left = "calc(var(--who) + (100% - var(--who)) * " + f + ")";
      });
    }
  }
})();
