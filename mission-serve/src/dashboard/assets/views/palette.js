// The command palette (Ctrl+K) and keyboard navigation. Registers with app.js
// (window.MissionDashboard); see API.md for the routes it reads.
'use strict';
(function () {
  const MD = window.MissionDashboard;
  if (!MD) return;
})();
