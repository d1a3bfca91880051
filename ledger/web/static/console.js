// sla-ledger console: keeps the at-risk list current by polling its JSON
// every few seconds. No framework, no build step, nothing fetched from
// elsewhere.
(function () {
  "use strict";
  var table = document.getElementById("at-risk");
  if (!table) { return; }
  var source = table.getAttribute("data-source");
  var stamp = document.getElementById("at-risk-updated");
  var body = table.tBodies[0];

  function duration(seconds) {
    var total = Math.floor(Number(seconds));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    return h + ":" + String(m).padStart(2, "0") + ":" + String(s).padStart(2, "0");
  }

  function cell(row, text, href) {
    var td = row.insertCell(-1);
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    return td;
  }

  function show(data) {
    var rows = document.createDocumentFragment();
    data.clocks.forEach(function (c) {
      var row = document.createElement("tr");
      row.setAttribute("data-incident", c.incident_id);
      if (c.due_at <= data.evaluated_at) { row.className = "overdue"; }
      cell(row, c.due_at);
      cell(row, c.incident_id, "/incidents/" + encodeURIComponent(c.incident_id));
      cell(row, c.agreement_id);
      cell(row, c.service_level_id);
      cell(row, c.custody);
      cell(row, duration(c.elapsed_seconds) + " / " + duration(c.threshold_seconds)).className = "num";
      rows.appendChild(row);
    });
    if (!data.clocks.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      cell(empty, "No clock is running.").colSpan = 6;
      rows.appendChild(empty);
    }
    body.replaceChildren(rows);
    stamp.textContent = data.evaluated_at;
  }

  function poll() {
    fetch(source, { credentials: "same-origin", headers: { "accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { show(data); } })
      .catch(function () { /* the next poll retries */ })
      .finally(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 2000);
}());
