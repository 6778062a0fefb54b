// Indicateur de sécurité du mot de passe, en mots, pendant la saisie.
// Simple aide : le serveur applique seul la politique (la page fonctionne
// sans JavaScript). Même estimation que le serveur : longueur × log2(jeu de
// caractères), « Très faible » pour un mot de passe trop courant.
(function () {
  "use strict";
  var input = document.getElementById("mot_de_passe");
  var out = document.getElementById("force");
  if (!input || !out) { return; }
  var common = ["password", "motdepasse", "azerty", "qwerty", "123456", "soleil", "bonjour", "jetaime"];
  function label(p) {
    if (!p) { return ""; }
    var lower = p.toLowerCase();
    for (var i = 0; i < common.length; i++) {
      if (lower.indexOf(common[i]) !== -1 && common[i].length * 2 > lower.length) { return "Très faible"; }
    }
    var pool = 0;
    if (/[a-zà-ÿ]/.test(p)) { pool += 26; }
    if (/[A-ZÀ-Þ]/.test(p)) { pool += 26; }
    if (/[0-9]/.test(p)) { pool += 10; }
    if (/[^a-zA-Z0-9à-ÿÀ-Þ]/.test(p)) { pool += 33; }
    var bits = p.length * Math.log(Math.max(pool, 1)) / Math.LN2;
    if (bits < 28) { return "Très faible"; }
    if (bits < 36) { return "Faible"; }
    if (bits < 60) { return "Moyen"; }
    if (bits < 80) { return "Sûr"; }
    return "Très sûr";
  }
  input.addEventListener("input", function () {
    var l = label(input.value);
    out.textContent = l ? "Sécurité du mot de passe : " + l : "";
  });
})();
