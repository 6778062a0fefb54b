// Indicateur de sécurité du mot de passe pendant la saisie. Le serveur
// répond lui-même (même estimation et mêmes règles que lors de l'envoi du
// formulaire) : la page n'a pas de second calcul qui pourrait diverger.
// Une question après chaque pause de frappe, avec le jeton CSRF du
// formulaire ; seule la dernière réponse est affichée.
(function () {
  "use strict";
  var input = document.getElementById("mot_de_passe");
  var out = document.getElementById("force");
  if (!input || !out || !window.fetch || !window.URLSearchParams) { return; }
  var form = input.form;
  var url = input.getAttribute("data-indicateur");
  var timer = null;
  var asked = 0;
  function field(name) {
    var el = form ? form.elements.namedItem(name) : null;
    return el && typeof el.value === "string" ? el.value : "";
  }
  function show(answer) {
    var text = "Sécurité du mot de passe : " + answer.niveau + ".";
    if (answer.raison) { text += " " + answer.raison; }
    out.textContent = text;
    out.setAttribute("data-accepte", answer.accepte ? "oui" : "non");
  }
  function ask() {
    var value = input.value;
    var mine = ++asked;
    if (!value) { out.textContent = ""; out.removeAttribute("data-accepte"); return; }
    var body = new URLSearchParams();
    body.set("csrf_token", field("csrf_token"));
    body.set("mot_de_passe", value);
    body.set("code", field("code"));
    fetch(url, { method: "POST", body: body, credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) { if (answer && mine === asked) { show(answer); } })
      .catch(function () { /* le formulaire reste utilisable sans indicateur */ });
  }
  input.addEventListener("input", function () {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(ask, 300);
  });
})();
