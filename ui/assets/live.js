// The live shard map: feeds GeomatchMap from the router's event stream
// (api/events), shows the nodes and the ring's timeline, and plans and
// applies admin actions (api/plan, api/apply) with the pasted token.
(function () {
  "use strict";
  function $(id) { return document.getElementById(id); }
  function text(el, s) { el.textContent = s; return el; }
  function td(tr, s) { return text(tr.appendChild(document.createElement("td")), s); }
  function num(v) { return v >= 100 || v === Math.round(v) ? String(Math.round(v)) : v.toFixed(1); }

  var doc = null;          // the newest snapshot
  var selected = null;     // the picked shard
  var pending = null;      // the planned action, with its epoch
  var lastMessage = 0;
  var map = GeomatchMap.create($("map"), {onSelect: function (s) { selected = s; showShard(); }});

  try { $("token").value = sessionStorage.getItem("geomatch-token") || ""; } catch (e) { /* storage off */ }
  $("token").addEventListener("change", function () {
    try { sessionStorage.setItem("geomatch-token", $("token").value.trim()); } catch (e) { /* storage off */ }
  });

  function setStatus(state, msg) {
    var s = $("status");
    s.setAttribute("data-state", state);
    s.textContent = msg;
  }

  var fenceOverlay = null;  // the fences, once loaded with the token

  // show draws d; false when it lacks a boundary this page never saw.
  function show(d) {
    if (fenceOverlay) {
      d.overlays = (d.overlays || []).filter(function (o) { return o.kind !== "polygons" || o.name.indexOf("fences") !== 0; }).concat([fenceOverlay]);
    }
    if (!map.update(d)) return false;
    doc = d;
    lastMessage = Date.now();
    document.title = d.title || "geomatch shard map";
    text($("title"), d.title || "geomatch shard map");
    var drivers = 0;
    for (var i = 0; i < d.nodes.length; i++) drivers += d.nodes[i].drivers;
    text($("summary"), "epoch " + d.epoch + " · " + d.shards.length + " shards · " + d.nodes.length + " nodes · " +
      drivers + " drivers · " + (d.membership || "") + " membership · " + new Date(d.time).toLocaleTimeString());
    $("summary").setAttribute("data-epoch", String(d.epoch));
    setStatus("live", "live");
    text($("auth-hint"), d.auth ? "Authentication is on: actions need an admin token." :
      "Authentication is off: anyone who reaches this page can act.");
    showNodes();
    showTimeline();
    if (selected) {
      var again = null;
      for (i = 0; i < d.shards.length; i++) if (d.shards[i].cell === selected.cell) again = d.shards[i];
      selected = again;
      showShard();
    }
    return true;
  }

  function refetch() {
    fetch("api/snapshot", {cache: "no-store"}).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(show).catch(function (e) { setStatus("reconnecting", "reconnecting… (" + e.message + ")"); });
  }

  var es = null;
  function connect() {
    es = new EventSource("api/events");
    es.addEventListener("snapshot", function (e) { show(JSON.parse(e.data)); });
    es.addEventListener("update", function (e) { if (!show(JSON.parse(e.data))) refetch(); });
    es.onerror = function () {
      setStatus("reconnecting", "reconnecting…");
      if (es.readyState === EventSource.CLOSED) {
        es = null;
        setTimeout(connect, 2000);
      }
    };
  }
  connect();
  setInterval(function () {
    if (doc && Date.now() - lastMessage > 5000 && $("status").getAttribute("data-state") === "live") {
      setStatus("stale", "no update for " + Math.round((Date.now() - lastMessage) / 1000) + " s");
    }
  }, 1000);

  function showNodes() {
    var tb = $("nodes").tBodies[0];
    tb.textContent = "";
    for (var i = 0; i < doc.nodes.length; i++) {
      var n = doc.nodes[i];
      var tr = tb.appendChild(document.createElement("tr"));
      tr.setAttribute("data-node", n.id);
      tr.setAttribute("data-state", n.state || "");
      var first = td(tr, "");
      var sw = first.appendChild(document.createElement("i"));
      sw.className = "swatch";
      sw.style.background = n.color;
      first.appendChild(document.createTextNode(n.id));
      first.title = (n.addr || "") + (n.error ? " — " + n.error : "") + " · weight " + n.weight;
      td(tr, n.state || "?");
      td(tr, String(n.shards));
      td(tr, String(n.drivers));
      td(tr, num(n.updates_per_s));
      td(tr, num(n.queries_per_s));
      td(tr, n.epoch ? String(n.epoch) : "");
      var b = td(tr, "").appendChild(document.createElement("button"));
      b.type = "button";
      b.textContent = n.drained ? "undrain" : "drain";
      b.setAttribute("data-action", b.textContent);
      b.setAttribute("data-node", n.id);
      b.addEventListener("click", (function (act, id) {
        return function () { planAction({action: act, node: id}); };
      })(b.textContent, n.id));
    }
    var sel = $("move-to"), keep = sel.value;
    sel.textContent = "";
    for (i = 0; i < doc.nodes.length; i++) {
      if (doc.nodes[i].drained) continue;
      var o = sel.appendChild(document.createElement("option"));
      o.value = o.textContent = doc.nodes[i].id;
    }
    if (keep) sel.value = keep;
  }

  function showShard() {
    $("shard-none").hidden = !!selected;
    $("shard-info").hidden = !selected;
    if (!selected) return;
    var s = selected;
    text($("shard-desc"), s.cell + " (resolution " + s.res + ") — owner " + (s.owner || "none") + (s.pinned ? " (pinned)" : "") +
      "; " + s.drivers + " drivers, " + num(s.updates_per_s) + " updates/s, " + num(s.queries_per_s) + " queries/s" +
      (s.parent ? "; split from " + s.parent : ""));
    $("btn-unpin").disabled = !s.pinned;
    $("btn-merge").disabled = !s.parent;
  }

  $("btn-move").addEventListener("click", function () {
    if (selected) planAction({action: "move", cell: selected.cell, node: $("move-to").value});
  });
  $("btn-unpin").addEventListener("click", function () { if (selected) planAction({action: "unpin", cell: selected.cell}); });
  $("btn-split").addEventListener("click", function () { if (selected) planAction({action: "split", cell: selected.cell}); });
  $("btn-merge").addEventListener("click", function () {
    if (selected && selected.parent) planAction({action: "merge", cell: selected.parent});
  });
  $("btn-cancel").addEventListener("click", function () { pending = null; $("plan").hidden = true; });
  $("btn-apply").addEventListener("click", function () {
    if (!pending) return;
    var req = pending;
    pending = null;
    $("plan").hidden = true;
    post("api/apply", req).then(function (rc) {
      result("ok", "applied: " + rc.description + " (epoch " + rc.epoch_before + " → " + rc.epoch + ")");
    }).catch(function (e) { result("error", e.message); });
  });

  // loadFences fetches the fences overlay (FenceService.ListFences with
  // the token) and keeps it fresh every 30 s.
  function loadFences() {
    var headers = {};
    var tok = $("token").value.trim();
    if (tok) headers.Authorization = "Bearer " + tok;
    return fetch("api/fences", {headers: headers, cache: "no-store"}).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error((j.code ? j.code + ": " : "") + (j.error || "HTTP " + r.status));
        return j;
      });
    }).then(function (ov) {
      fenceOverlay = ov;
      text($("fence-note"), " " + (ov.polygons || []).length + " fence shapes");
      $("fence-note").setAttribute("data-fences", String((ov.polygons || []).length));
      if (doc) show(doc);
    }).catch(function (e) { result("error", "fences: " + e.message); });
  }
  $("btn-fences").addEventListener("click", loadFences);
  setInterval(function () { if (fenceOverlay) loadFences(); }, 30000);

  function result(kind, msg) {
    var r = $("result");
    r.className = "result " + kind;
    r.setAttribute("data-kind", kind);
    r.textContent = msg;
  }

  function post(url, body) {
    var headers = {"Content-Type": "application/json"};
    var tok = $("token").value.trim();
    if (tok) headers.Authorization = "Bearer " + tok;
    return fetch(url, {method: "POST", headers: headers, body: JSON.stringify(body), credentials: "same-origin"}).then(function (r) {
      return r.json().catch(function () { return {error: "HTTP " + r.status}; }).then(function (j) {
        if (!r.ok) throw new Error((j.code ? j.code + ": " : "") + (j.error || "HTTP " + r.status));
        return j;
      });
    });
  }

  function planAction(req) {
    result("", "planning " + req.action + "…");
    post("api/plan", req).then(function (p) {
      pending = {action: req.action, cell: req.cell, node: req.node, epoch: p.epoch};
      text($("plan-desc"), p.description + " at epoch " + p.epoch + ": " + (p.moves || []).length + " shown shards change, " +
        p.drivers_moved + " drivers move.");
      var tb = $("plan-moves").tBodies[0];
      tb.textContent = "";
      var moves = p.moves || [];
      for (var i = 0; i < moves.length && i < 200; i++) {
        var tr = tb.appendChild(document.createElement("tr"));
        td(tr, moves[i].cell);
        td(tr, String(moves[i].res));
        td(tr, moves[i].from || "—");
        td(tr, moves[i].to || "—");
        td(tr, String(moves[i].drivers));
      }
      text($("plan-note"), p.note || "");
      $("plan").hidden = false;
      result("", "");
    }).catch(function (e) {
      $("plan").hidden = true;
      result("error", e.message);
    });
  }

  function showTimeline() {
    var ol = $("timeline");
    ol.textContent = "";
    var evs = doc.timeline || [];
    // Newest ring change first; within one, its events in order (the
    // epoch line, then what changed).
    var groups = [], i;
    for (i = Math.max(0, evs.length - 200); i < evs.length; i++) {
      if (!groups.length || evs[i].kind === "epoch" || groups[groups.length - 1][0].epoch !== evs[i].epoch) groups.push([]);
      groups[groups.length - 1].push(evs[i]);
    }
    var ordered = [];
    for (i = groups.length - 1; i >= 0; i--) ordered = ordered.concat(groups[i]);
    evs = ordered;
    for (i = 0; i < evs.length; i++) {
      var li = ol.appendChild(document.createElement("li"));
      li.setAttribute("data-kind", evs[i].kind);
      li.setAttribute("data-epoch", String(evs[i].epoch));
      text(li.appendChild(document.createElement("span")), new Date(evs[i].time).toLocaleTimeString()).className = "t";
      li.appendChild(document.createTextNode(evs[i].text));
    }
    if (!evs.length) text(ol.appendChild(document.createElement("li")), "No ring change since this router started.");
  }
})();
