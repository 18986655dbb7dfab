/* Field work pages: the phone's position at check-in, and the customer's signature on a canvas.
   Progressive enhancement only: without this file check-in posts without a position (the engineer
   confirms arrival by hand; the site's coordinates stand in) and the report is sent unsigned. */
(function () {
  "use strict";

  /* Check-in: ask the browser for the position; if it cannot or may not tell, confirm by hand. */
  Array.prototype.forEach.call(document.querySelectorAll("form[data-geo-checkin]"), function (form) {
    var sending = false;
    form.addEventListener("submit", function (event) {
      if (sending || !navigator.geolocation) { return; }
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; }
      function send() { sending = true; form.submit(); }
      function manual() {
        if (window.confirm(form.getAttribute("data-confirm") || "")) { send(); return; }
        if (button) { button.disabled = false; }
      }
      navigator.geolocation.getCurrentPosition(function (position) {
        form.elements.latitude.value = position.coords.latitude.toFixed(6);
        form.elements.longitude.value = position.coords.longitude.toFixed(6);
        send();
      }, manual, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
    });
  });

  /* Signature: draw with a finger (or mouse); every stroke writes the PNG into the hidden field. */
  var pad = document.querySelector("[data-signature-pad]");
  if (!pad) { return; }
  var canvas = pad.querySelector("canvas");
  var field = pad.querySelector("input[name=signature]");
  var clear = pad.querySelector("[data-signature-clear]");
  if (!canvas || !field || !canvas.getContext) { return; }
  var ctx = canvas.getContext("2d");
  var drawing = false;
  var last = null;

  function blank() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.lineWidth = 4;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#111";
  }

  function at(event) {
    var box = canvas.getBoundingClientRect();
    return { x: (event.clientX - box.left) * canvas.width / box.width,
             y: (event.clientY - box.top) * canvas.height / box.height };
  }

  function finish() {
    if (!drawing) { return; }
    drawing = false;
    field.value = canvas.toDataURL("image/png");
    pad.classList.add("signed");
  }

  blank();
  pad.classList.add("ready");
  if (clear) { clear.hidden = false; }
  canvas.addEventListener("pointerdown", function (event) {
    drawing = true;
    last = at(event);
    if (canvas.setPointerCapture) { canvas.setPointerCapture(event.pointerId); }
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", function (event) {
    if (!drawing) { return; }
    var point = at(event);
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(point.x, point.y);
    ctx.stroke();
    last = point;
    event.preventDefault();
  });
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  if (clear) {
    clear.addEventListener("click", function () {
      blank();
      field.value = "";
      pad.classList.remove("signed");
    });
  }
  if (field.value) {  /* the form came back with an error: show what was already signed */
    var image = new Image();
    image.onload = function () { ctx.drawImage(image, 0, 0); pad.classList.add("signed"); };
    image.src = field.value;
  }
}());
