// GeomatchMap draws a geomatch shard map document (Go: ui/mapview.Snapshot)
// as SVG: H3 shard hexagons filled with their owner's colour and shaded by
// a chosen load, split children at their own resolution, optional overlays,
// and a legend of owners. No basemap, no network, no dependencies; only
// standard DOM and SVG APIs (Firefox and Chromium alike).
//
//   var map = GeomatchMap.create(container, {onSelect: function (shard) {}});
//   map.update(doc);   // false when a shard's boundary is unknown: refetch
//
// Every shard polygon carries data-cell, data-owner, data-color and
// data-res attributes; the <svg> carries data-epoch and data-shards.
(function (global) {
  "use strict";
  var SVGNS = "http://www.w3.org/2000/svg";
  var LOAD_LABELS = {
    none: "owner only",
    drivers: "drivers",
    updates_per_s: "updates/s",
    queries_per_s: "queries/s",
    fence_events_per_s: "fence events/s"
  };

  function el(ns, name, attrs, parent) {
    var e = ns ? document.createElementNS(ns, name) : document.createElement(name);
    if (attrs) {
      for (var k in attrs) {
        if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
      }
    }
    if (parent) parent.appendChild(e);
    return e;
  }

  function wrap(d) {
    while (d > 180) d -= 360;
    while (d < -180) d += 360;
    return d;
  }

  function fmt(v) {
    if (typeof v !== "number") return String(v);
    if (v >= 100 || v === Math.round(v)) return String(Math.round(v));
    return v.toFixed(1);
  }

  function GMap(container, opts) {
    this.opts = opts || {};
    this.container = container;
    container.classList.add("gm-map");
    this.load = this.opts.load || "drivers";
    this.boundaries = {};   // cell -> [[lat, lng], ...]
    this.polys = {};        // cell -> SVG polygon
    this.overlayOn = {};    // overlay name -> shown
    this.selected = "";
    this.proj = null;
    this.view = null;
    this.docv = null;

    var bar = el(null, "div", {"class": "gm-bar"}, container);
    var lab = el(null, "label", null, bar);
    lab.appendChild(document.createTextNode("shade by "));
    this.loadSelect = el(null, "select", {"class": "gm-load", "aria-label": "shade shards by"}, lab);
    var self = this;
    this.loadSelect.addEventListener("change", function () {
      self.load = self.loadSelect.value;
      if (self.docv) self.draw();
    });
    var fit = el(null, "button", {"type": "button", "class": "gm-fit"}, bar);
    fit.textContent = "fit";
    fit.addEventListener("click", function () { self.fit(); });
    this.overlayBar = el(null, "span", {"class": "gm-overlays"}, bar);

    this.svg = el(SVGNS, "svg", {"class": "gm-svg", "role": "img", "aria-label": "shard map"}, container);
    this.gShards = el(SVGNS, "g", {"class": "gm-shards"}, this.svg);
    this.gOverlays = el(SVGNS, "g", {"class": "gm-overlay-layers"}, this.svg);
    this.scale = el(null, "div", {"class": "gm-scale"}, container);
    this.legend = el(null, "div", {"class": "gm-legend"}, container);
    this.note = el(null, "div", {"class": "gm-note"}, container);
    this.bindPanZoom();
  }

  // project turns [lat, lng] into SVG user units around the centre.
  GMap.prototype.project = function (ll) {
    var p = this.proj;
    return [wrap(ll[1] - p.lng0) * p.k * 1000, -(ll[0] - p.lat0) * 1000];
  };

  GMap.prototype.setProjection = function (doc) {
    var pts = [];
    var i, j;
    for (i = 0; i < doc.shards.length; i++) {
      var b = this.boundaries[doc.shards[i].cell];
      if (b && b.length) pts.push(b[0]);
    }
    var ovs = doc.overlays || [];
    for (i = 0; i < ovs.length && pts.length < 1000; i++) {
      var o = ovs[i];
      for (j = 0; o.points && j < o.points.length && j < 200; j++) pts.push(o.points[j]);
      for (j = 0; o.lines && j < o.lines.length && j < 200; j++) if (o.lines[j].length) pts.push(o.lines[j][0]);
      for (j = 0; o.polygons && j < o.polygons.length; j++) if (o.polygons[j].rings.length && o.polygons[j].rings[0].length) pts.push(o.polygons[j].rings[0][0]);
    }
    if (!pts.length) {
      this.proj = {lat0: 0, lng0: 0, k: 1};
      return;
    }
    var lng0 = pts[0][1], lat = 0, dl = 0;
    for (i = 0; i < pts.length; i++) {
      lat += pts[i][0];
      dl += wrap(pts[i][1] - lng0);
    }
    lat /= pts.length;
    lng0 = wrap(lng0 + dl / pts.length);
    this.proj = {lat0: lat, lng0: lng0, k: Math.max(0.05, Math.cos(lat * Math.PI / 180))};
  };

  GMap.prototype.pointsAttr = function (ring) {
    var s = [];
    for (var i = 0; i < ring.length; i++) {
      var p = this.project(ring[i]);
      s.push(p[0].toFixed(3) + "," + p[1].toFixed(3));
    }
    return s.join(" ");
  };

  // update draws doc. It returns false, drawing nothing, when a shard has
  // no boundary in doc and none is known from an earlier one.
  GMap.prototype.update = function (doc) {
    var i, s;
    for (i = 0; i < doc.shards.length; i++) {
      s = doc.shards[i];
      if (s.boundary && s.boundary.length) this.boundaries[s.cell] = s.boundary;
      else if (!this.boundaries[s.cell]) return false;
    }
    this.docv = doc;
    if (!this.proj && (doc.shards.length || (doc.overlays && doc.overlays.length))) {
      this.setProjection(doc);
    }
    this.syncLoads(doc);
    this.draw();
    if (!this.view) this.fit();
    return true;
  };

  GMap.prototype.syncLoads = function (doc) {
    var loads = ["none"].concat(doc.loads || []);
    var have = [];
    for (var i = 0; i < this.loadSelect.options.length; i++) have.push(this.loadSelect.options[i].value);
    if (have.join() === loads.join()) return;
    this.loadSelect.textContent = "";
    for (i = 0; i < loads.length; i++) {
      var o = el(null, "option", {"value": loads[i]}, this.loadSelect);
      o.textContent = LOAD_LABELS[loads[i]] || loads[i];
    }
    if (loads.indexOf(this.load) < 0) this.load = loads.length > 1 ? loads[1] : "none";
    this.loadSelect.value = this.load;
  };

  GMap.prototype.colors = function () {
    var c = {};
    var nodes = this.docv.nodes || [];
    for (var i = 0; i < nodes.length; i++) c[nodes[i].id] = nodes[i].color;
    return c;
  };

  GMap.prototype.draw = function () {
    var doc = this.docv;
    if (!this.proj) this.proj = {lat0: 0, lng0: 0, k: 1};
    var colors = this.colors();
    var load = this.load, max = 0, i, s;
    if (load !== "none") {
      for (i = 0; i < doc.shards.length; i++) max = Math.max(max, doc.shards[i][load] || 0);
    }
    var seen = {};
    var owned = {};
    // Many new hexagons (the first paint): build them off the document
    // and attach them once.
    var fresh = 0;
    for (i = 0; i < doc.shards.length; i++) if (!this.polys[doc.shards[i].cell]) fresh++;
    var detached = fresh > 50;
    if (detached) this.svg.removeChild(this.gShards);
    for (i = 0; i < doc.shards.length; i++) {
      s = doc.shards[i];
      seen[s.cell] = true;
      owned[s.owner] = (owned[s.owner] || 0) + 1;
      var poly = this.polys[s.cell];
      if (!poly) {
        poly = el(SVGNS, "polygon", {
          "class": "gm-shard", "data-cell": s.cell, "data-res": String(s.res),
          "points": this.pointsAttr(this.boundaries[s.cell]), "vector-effect": "non-scaling-stroke"
        }, this.gShards);
        el(SVGNS, "title", null, poly);
        this.bindSelect(poly, s.cell);
        this.polys[s.cell] = poly;
      }
      var color = colors[s.owner] || "#999999";
      var op = 0.5;
      if (load !== "none") op = max > 0 ? 0.12 + 0.78 * Math.sqrt((s[load] || 0) / max) : 0.12;
      poly.setAttribute("fill", color);
      poly.setAttribute("fill-opacity", op.toFixed(3));
      poly.setAttribute("data-owner", s.owner);
      poly.setAttribute("data-color", color);
      poly.setAttribute("data-drivers", String(s.drivers || 0));
      poly.setAttribute("class", "gm-shard" + (s.pinned ? " gm-pinned" : "") + (s.cell === this.selected ? " gm-selected" : ""));
      var t = s.cell + " (res " + s.res + "): owner " + (s.owner || "none") + (s.pinned ? " (pinned)" : "") +
        ", " + (s.drivers || 0) + " drivers, " + fmt(s.updates_per_s || 0) + " updates/s, " + fmt(s.queries_per_s || 0) + " queries/s";
      if (s.fence_events_per_s) t += ", " + fmt(s.fence_events_per_s) + " fence events/s";
      poly.firstChild.textContent = t;
    }
    for (var cell in this.polys) {
      if (Object.prototype.hasOwnProperty.call(this.polys, cell) && !seen[cell]) {
        this.gShards.removeChild(this.polys[cell]);
        delete this.polys[cell];
      }
    }
    if (detached) this.svg.insertBefore(this.gShards, this.gOverlays);
    this.svg.setAttribute("data-epoch", String(doc.epoch));
    this.svg.setAttribute("data-shards", String(doc.shards.length));
    this.drawOverlays(doc.overlays || []);
    this.drawLegend(doc, owned);
    this.note.textContent = doc.note || (doc.shards.length ? "" : "No shard holds drivers yet: shards appear as drivers report.");
  };

  GMap.prototype.bindSelect = function (poly, cell) {
    var self = this;
    poly.addEventListener("click", function () {
      if (self.dragged) return;
      self.select(cell);
    });
  };

  GMap.prototype.select = function (cell) {
    this.selected = cell;
    for (var c in this.polys) {
      if (!Object.prototype.hasOwnProperty.call(this.polys, c)) continue;
      this.polys[c].classList.toggle("gm-selected", c === cell);
    }
    if (this.opts.onSelect && this.docv) {
      var found = null;
      for (var i = 0; i < this.docv.shards.length; i++) if (this.docv.shards[i].cell === cell) found = this.docv.shards[i];
      this.opts.onSelect(found);
    }
  };

  GMap.prototype.drawOverlays = function (ovs) {
    var key = JSON.stringify(ovs.map(function (o) {
      return [o.name, o.kind, (o.points || []).length, (o.lines || []).length, (o.polygons || []).length];
    }));
    if (key !== this.overlayKey) {
      this.overlayKey = key;
      this.gOverlays.textContent = "";
      this.overlayBar.textContent = "";
      var self = this;
      for (var i = 0; i < ovs.length; i++) {
        var o = ovs[i];
        if (!(o.name in this.overlayOn)) this.overlayOn[o.name] = !o.hidden;
        var g = this.drawOverlay(o);
        g.style.display = this.overlayOn[o.name] ? "" : "none";
        var lab = el(null, "label", {"class": "gm-toggle"}, this.overlayBar);
        var cb = el(null, "input", {"type": "checkbox", "data-overlay": o.name}, lab);
        cb.checked = this.overlayOn[o.name];
        var sw = el(null, "i", null, lab);
        sw.style.background = o.color;
        lab.appendChild(document.createTextNode(o.name));
        cb.addEventListener("change", (function (g, name, cb) {
          return function () {
            self.overlayOn[name] = cb.checked;
            g.style.display = cb.checked ? "" : "none";
          };
        })(g, o.name, cb));
      }
    }
    this.sizePoints();
  };

  GMap.prototype.drawOverlay = function (o) {
    var g = el(SVGNS, "g", {"class": "gm-overlay", "data-name": o.name}, this.gOverlays);
    var i, j;
    if (o.kind === "lines" && o.lines) {
      var d = [];
      for (i = 0; i < o.lines.length; i++) {
        for (j = 0; j < o.lines[i].length; j++) {
          var p = this.project(o.lines[i][j]);
          d.push((j ? "L" : "M") + p[0].toFixed(2) + " " + p[1].toFixed(2));
        }
      }
      el(SVGNS, "path", {
        "d": d.join(""), "fill": "none", "stroke": o.color, "stroke-width": String(o.width || 1),
        "vector-effect": "non-scaling-stroke", "stroke-dasharray": o.dash || "none"
      }, g);
    } else if (o.kind === "points" && o.points) {
      g.setAttribute("fill", o.color);
      g.setAttribute("fill-opacity", String(o.opacity || 0.8));
      for (i = 0; i < o.points.length; i++) {
        var q = this.project(o.points[i]);
        el(SVGNS, "circle", {"cx": q[0].toFixed(2), "cy": q[1].toFixed(2), "r": "1", "class": "gm-point", "data-px": String(o.radius || 2)}, g);
      }
    } else if (o.kind === "polygons" && o.polygons) {
      for (i = 0; i < o.polygons.length; i++) {
        var pg = o.polygons[i], dd = [];
        for (j = 0; j < pg.rings.length; j++) dd.push("M" + this.pointsAttr(pg.rings[j]).replace(/ /g, "L") + "Z");
        var path = el(SVGNS, "path", {
          "d": dd.join(""), "fill": o.color, "fill-opacity": String(o.opacity || 0.05), "fill-rule": "evenodd",
          "stroke": o.color, "stroke-width": String(o.width || 1.5), "vector-effect": "non-scaling-stroke",
          "stroke-dasharray": o.dash || "none"
        }, g);
        if (pg.title) el(SVGNS, "title", null, path).textContent = pg.title;
      }
    }
    return g;
  };

  // unitsPerPx is how many SVG user units one screen pixel spans.
  GMap.prototype.unitsPerPx = function () {
    if (!this.view) return 1;
    var w = this.svg.clientWidth || 800, h = this.svg.clientHeight || 600;
    return Math.max(this.view[2] / w, this.view[3] / h);
  };

  GMap.prototype.sizePoints = function () {
    var u = this.unitsPerPx();
    var pts = this.gOverlays.querySelectorAll("circle.gm-point");
    for (var i = 0; i < pts.length; i++) pts[i].setAttribute("r", (parseFloat(pts[i].getAttribute("data-px")) * u).toFixed(3));
    // Scale bar: a round distance about 100 px long.
    if (this.proj) {
      var m = 100 * u;           // user units; 1000 units = 1 degree of latitude
      var metres = m / 1000 * 111195;
      var nice = Math.pow(10, Math.floor(Math.log(metres) / Math.LN10));
      if (metres / nice >= 5) nice *= 5; else if (metres / nice >= 2) nice *= 2;
      var px = nice / 111195 * 1000 / u;
      this.scale.style.width = Math.round(px) + "px";
      this.scale.textContent = nice >= 1000 ? (nice / 1000) + " km" : nice + " m";
    }
  };

  GMap.prototype.drawLegend = function (doc, owned) {
    this.legend.textContent = "";
    var nodes = doc.nodes || [];
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i];
      var span = el(null, "span", {"class": "gm-owner", "data-owner": n.id, "data-color": n.color}, this.legend);
      var sw = el(null, "i", null, span);
      sw.style.background = n.color;
      span.appendChild(document.createTextNode(n.id + " (" + (owned[n.id] || 0) + ")"));
    }
  };

  GMap.prototype.fit = function () {
    if (!this.docv) return;
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    var add = function (p) {
      if (p[0] < minX) minX = p[0];
      if (p[0] > maxX) maxX = p[0];
      if (p[1] < minY) minY = p[1];
      if (p[1] > maxY) maxY = p[1];
    };
    var i, j;
    for (i = 0; i < this.docv.shards.length; i++) {
      var b = this.boundaries[this.docv.shards[i].cell] || [];
      for (j = 0; j < b.length; j++) add(this.project(b[j]));
    }
    var ovs = this.docv.overlays || [];
    for (i = 0; i < ovs.length; i++) {
      var o = ovs[i], k;
      for (j = 0; o.points && j < o.points.length; j++) add(this.project(o.points[j]));
      for (j = 0; o.lines && j < o.lines.length; j++) for (k = 0; k < o.lines[j].length; k++) add(this.project(o.lines[j][k]));
      for (j = 0; o.polygons && j < o.polygons.length; j++) {
        var rs = o.polygons[j].rings;
        for (k = 0; rs.length && k < rs[0].length; k++) add(this.project(rs[0][k]));
      }
    }
    if (minX === Infinity) {
      minX = -50; minY = -50; maxX = 50; maxY = 50;
    }
    var w = Math.max(maxX - minX, 1), h = Math.max(maxY - minY, 1);
    this.setView([minX - w * 0.04, minY - h * 0.04, w * 1.08, h * 1.08]);
  };

  GMap.prototype.setView = function (v) {
    this.view = v;
    this.svg.setAttribute("viewBox", v.map(function (x) { return x.toFixed(3); }).join(" "));
    this.sizePoints();
  };

  // svgPoint converts a mouse event's client position to user units.
  GMap.prototype.svgPoint = function (ev) {
    var ctm = this.svg.getScreenCTM();
    if (!ctm) return [this.view[0] + this.view[2] / 2, this.view[1] + this.view[3] / 2];
    var pt = this.svg.createSVGPoint();
    pt.x = ev.clientX;
    pt.y = ev.clientY;
    var p = pt.matrixTransform(ctm.inverse());
    return [p.x, p.y];
  };

  GMap.prototype.bindPanZoom = function () {
    var self = this;
    this.svg.addEventListener("wheel", function (ev) {
      if (!self.view) return;
      ev.preventDefault();
      var f = ev.deltaY > 0 ? 1.2 : 1 / 1.2;
      var p = self.svgPoint(ev), v = self.view;
      self.setView([p[0] - (p[0] - v[0]) * f, p[1] - (p[1] - v[1]) * f, v[2] * f, v[3] * f]);
    }, {passive: false});
    var start = null;
    this.svg.addEventListener("mousedown", function (ev) {
      if (!self.view || ev.button !== 0) return;
      start = {x: ev.clientX, y: ev.clientY, view: self.view.slice(), u: self.unitsPerPx()};
      self.dragged = false;
    });
    global.addEventListener("mousemove", function (ev) {
      if (!start) return;
      var dx = ev.clientX - start.x, dy = ev.clientY - start.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) self.dragged = true;
      if (!self.dragged) return;
      self.setView([start.view[0] - dx * start.u, start.view[1] - dy * start.u, start.view[2], start.view[3]]);
    });
    global.addEventListener("mouseup", function () {
      start = null;
      setTimeout(function () { self.dragged = false; }, 0);
    });
  };

  global.GeomatchMap = {
    create: function (container, opts) { return new GMap(container, opts); },
    loadLabels: LOAD_LABELS
  };
})(window);
