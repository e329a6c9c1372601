// Community pages: a print button on the map and the report (pages work without this file).
"use strict";
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
