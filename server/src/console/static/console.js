// keyplane console: live throughput charts. Polls /metrics.json (same origin, the session cookie)
// every 2 s, keeps the last 60 points per operation, and draws requests per second and mean
// latency per interval on two canvases. No dependencies; CSP script-src 'self'.
(function () {
  'use strict';
  var rps = document.getElementById('rps-chart');
  var lat = document.getElementById('latency-chart');
  if (!rps || !lat) { return; }
  var legend = document.getElementById('legend');
  var colors = ['#0b4f9c', '#8b0000', '#1e6b34', '#6a1b9a', '#c25e00', '#00695c', '#4e342e', '#37474f'];
  var keep = 60;
  var last = null;
  var series = {}; // operation -> {rps: [], lat: [], color}
  var order = [];

  function colorOf(op) {
    if (!series[op]) {
      series[op] = { rps: [], lat: [], color: colors[order.length % colors.length] };
      order.push(op);
      var li = document.createElement('li');
      var sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = series[op].color;
      li.appendChild(sw);
      li.appendChild(document.createTextNode(op));
      legend.appendChild(li);
    }
    return series[op];
  }

  function draw(canvas, key, unit) {
    var ctx = canvas.getContext('2d');
    var w = canvas.width, h = canvas.height, pad = 36;
    ctx.clearRect(0, 0, w, h);
    var max = 0;
    order.forEach(function (op) {
      series[op][key].forEach(function (v) { if (v > max) { max = v; } });
    });
    if (max <= 0) { max = 1; }
    ctx.strokeStyle = '#767676';
    ctx.fillStyle = '#111';
    ctx.font = '12px sans-serif';
    ctx.beginPath();
    ctx.moveTo(pad, 4); ctx.lineTo(pad, h - 18); ctx.lineTo(w - 4, h - 18);
    ctx.stroke();
    ctx.fillText(max.toFixed(max < 10 ? 2 : 0) + ' ' + unit, 2, 14);
    ctx.fillText('0', 2, h - 20);
    ctx.fillText('last ' + (keep * 2) + ' s', w - 80, h - 4);
    order.forEach(function (op) {
      var pts = series[op][key];
      if (pts.length < 2) { return; }
      ctx.strokeStyle = series[op].color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      pts.forEach(function (v, i) {
        var x = pad + (w - pad - 4) * (i + keep - pts.length) / (keep - 1);
        var y = (h - 18) - (h - 26) * v / max;
        if (i === 0) { ctx.moveTo(x, y); } else { ctx.lineTo(x, y); }
      });
      ctx.stroke();
    });
  }

  function poll() {
    fetch('/metrics.json', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (now) {
        if (!now) { return; }
        if (last) {
          var dt = Math.max(0.001, (now.time_ms - last.time_ms) / 1000);
          var before = {};
          last.operations.forEach(function (o) { before[o.operation] = o; });
          now.operations.forEach(function (o) {
            var b = before[o.operation] || { requests: 0, latency_sum_us: 0 };
            var n = o.requests - b.requests;
            var s = colorOf(o.operation);
            s.rps.push(n / dt);
            s.lat.push(n > 0 ? (o.latency_sum_us - b.latency_sum_us) / n / 1000 : 0);
            if (s.rps.length > keep) { s.rps.shift(); s.lat.shift(); }
          });
          draw(rps, 'rps', 'req/s');
          draw(lat, 'lat', 'ms');
        }
        last = now;
      })
      .catch(function () {});
  }
  poll();
  setInterval(poll, 2000);
})();
