// The report's in-page filters (vault.audit.html): counts come from the JSON in #report-data,
// rows and bars are hidden or redrawn, and the URL fragment (#user=bob&kind=used) presets them.
(function () {
  "use strict";
  var source = document.getElementById("report-data");
  var form = document.getElementById("filters");
  var shown = document.getElementById("shown");
  if (!source || !form || !shown) {
    return;
  }
  var data = JSON.parse(source.textContent);
  if (data.cells.length === 0 && data.days.length > 0) {
    form.hidden = true; // too many counts to embed: the page says so
    return;
  }
  var keys = ["token", "provider", "user", "kind", "from", "to"];
  var lists = { token: data.names, provider: data.providers, user: data.users, kind: data.kinds };
  var controls = {};
  keys.forEach(function (key) {
    controls[key] = document.getElementById("f-" + key);
  });
  var chart = document.getElementById("chart");
  var vaultRowOfKind = {};
  data.vault.forEach(function (kind, row) {
    vaultRowOfKind[kind] = row;
  });

  function chosen() {
    var f = {};
    keys.forEach(function (key) {
      f[key] = controls[key].value;
    });
    return f;
  }

  function position(key, value) {
    if (value === "") {
      return null;
    }
    var at = lists[key].indexOf(value);
    return at < 0 ? -99 : at;
  }

  function setCount(row, count) {
    var cell = row.querySelector(".count");
    if (cell) {
      cell.textContent = count.toLocaleString("en");
    }
  }

  function apply(fromHash) {
    var f = chosen();
    var want = {
      n: position("token", f.token),
      p: position("provider", f.provider),
      u: position("user", f.user),
      k: position("kind", f.kind)
    };
    var narrow = want.u !== null || want.k !== null || f.from !== "" || f.to !== "";
    var active = narrow || want.n !== null || want.p !== null;
    var lives = data.lives.map(function () { return 0; });
    var attempts = data.attempts.map(function () { return 0; });
    var vault = data.vault.map(function () { return 0; });
    var perDay = {};
    var total = 0;
    var all = 0;
    data.cells.forEach(function (c) {
      // [day, kind, segment (0 use, 1 refused or failed, 2 other), owner, user, count]
      var day = data.days[c[0]];
      var owner = c[3];
      var who = owner === null ? [-1, -1] : owner >= 0 ? data.lives[owner] : data.attempts[-1 - owner];
      all += c[5];
      if ((want.n !== null && who[0] !== want.n) || (want.p !== null && who[1] !== want.p) ||
          (want.u !== null && c[4] !== want.u) || (want.k !== null && c[1] !== want.k) ||
          (f.from !== "" && day < f.from) || (f.to !== "" && day > f.to)) {
        return;
      }
      total += c[5];
      if (owner === null) {
        vault[vaultRowOfKind[c[1]]] += c[5];
      } else if (owner >= 0) {
        lives[owner] += c[5];
      } else {
        attempts[-1 - owner] += c[5];
      }
      var counts = perDay[day] || (perDay[day] = [0, 0, 0]);
      counts[c[2]] += c[5];
    });
    document.querySelectorAll("tr.life").forEach(function (row) {
      var i = Number(row.getAttribute("data-life"));
      var who = data.lives[i];
      var named = (want.n === null || who[0] === want.n) && (want.p === null || who[1] === want.p);
      row.hidden = active && lives[i] === 0 && (narrow || !named);
      setCount(row, lives[i]);
    });
    document.querySelectorAll("tr.attempt").forEach(function (row) {
      var i = Number(row.getAttribute("data-attempt"));
      row.hidden = active && attempts[i] === 0;
      setCount(row, attempts[i]);
    });
    document.querySelectorAll("tr.vault-event").forEach(function (row) {
      var i = Number(row.getAttribute("data-vault"));
      row.hidden = active && vault[i] === 0;
      setCount(row, vault[i]);
    });
    document.querySelectorAll("tr.record").forEach(function (row) {
      var d = row.getAttribute("data-d");
      var n = Number(row.getAttribute("data-n"));
      var p = Number(row.getAttribute("data-p"));
      var u = Number(row.getAttribute("data-u"));
      var k = Number(row.getAttribute("data-k"));
      row.hidden = (want.n !== null && n !== want.n) || (want.p !== null && p !== want.p) ||
        (want.u !== null && u !== want.u) || (want.k !== null && k !== want.k) ||
        (f.from !== "" && (d === "" || d < f.from)) || (f.to !== "" && (d === "" || d > f.to));
    });
    if (chart) {
      var top = Number(chart.getAttribute("data-top"));
      var plot = Number(chart.getAttribute("data-plot"));
      var peak = 0;
      data.chart_days.forEach(function (day) {
        var c = perDay[day] || [0, 0, 0];
        peak = Math.max(peak, c[0] + c[1] + c[2]);
      });
      chart.querySelectorAll("g.bar").forEach(function (bar) {
        var day = data.chart_days[Number(bar.getAttribute("data-day"))];
        var counts = perDay[day] || [0, 0, 0];
        var y = top + plot;
        bar.querySelectorAll("rect").forEach(function (rect, s) {
          var h = peak ? counts[s] / peak * plot : 0;
          y -= h;
          rect.setAttribute("y", y.toFixed(2));
          rect.setAttribute("height", h.toFixed(2));
        });
        bar.setAttribute("data-count", String(counts[0] + counts[1] + counts[2]));
      });
      var label = document.getElementById("chart-max");
      if (label) {
        label.textContent = String(peak);
      }
    }
    var parts = [];
    keys.forEach(function (key) {
      if (f[key] !== "") {
        parts.push(key + " " + f[key]);
      }
    });
    shown.textContent = active
      ? "Showing " + total.toLocaleString("en") + " of " + all.toLocaleString("en") +
        " records: " + parts.join(", ") + "."
      : "Showing every record.";
    if (!fromHash) {
      var query = new URLSearchParams();
      keys.forEach(function (key) {
        if (f[key] !== "") {
          query.set(key, f[key]);
        }
      });
      try {
        history.replaceState(null, "", "#" + query.toString());
      } catch (e) {
        // a page opened where history cannot be changed: the filters still apply
      }
    }
  }

  function fromHash() {
    var query = new URLSearchParams(location.hash.replace(/^#/, ""));
    var unknown = [];
    keys.forEach(function (key) {
      var value = query.get(key) || "";
      controls[key].value = value;
      if (controls[key].value !== value) {
        unknown.push(key + " " + value);
        controls[key].value = "";
      }
    });
    apply(true);
    if (unknown.length) {
      shown.textContent += " Not in this report, so not applied: " + unknown.join(", ") + ".";
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
  });
  form.addEventListener("change", function () {
    apply(false);
  });
  form.addEventListener("reset", function () {
    setTimeout(function () {
      apply(false);
    }, 0);
  });
  window.addEventListener("hashchange", fromHash);
  form.setAttribute("data-ready", "true");
  fromHash();
})();
