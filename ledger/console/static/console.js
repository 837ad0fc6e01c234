// Progressive enhancement only: every page works without this file.
// Regions marked data-refresh reload their server-rendered fragment every data-every seconds.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-refresh]").forEach(function (region) {
    var every = Math.max(2, Number(region.getAttribute("data-every")) || 5) * 1000;
    var url = region.getAttribute("data-refresh");
    function refresh() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.status === 401) {
            window.location.assign("/console/sign-in?next=" + encodeURIComponent(window.location.pathname));
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null) { region.innerHTML = html; region.setAttribute("data-refreshed", String(Date.now())); }
        })
        .catch(function () { /* offline for a moment: try again next time */ })
        .finally(function () { window.setTimeout(refresh, every); });
    }
    window.setTimeout(refresh, every);
  });
});
