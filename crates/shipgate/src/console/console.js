// Progressive enhancement only: every page reads the same without it. Times are
// rendered in UTC by the server; here they are shown in the viewer's own zone, with
// the offset, and the UTC text stays in the element's title.
(function () {
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function offset(d) {
    var m = -d.getTimezoneOffset(), sign = m >= 0 ? "+" : "-";
    m = Math.abs(m);
    return "UTC" + sign + pad(Math.floor(m / 60)) + ":" + pad(m % 60);
  }
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var t = times[i], d = new Date(t.getAttribute("datetime"));
    if (isNaN(d.getTime())) continue;
    t.title = t.textContent;
    t.textContent = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " " + offset(d);
  }
})();
