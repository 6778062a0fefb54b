/* Envoie automatiquement le formulaire id="autosubmit" (CAS method=POST).
   Sans JavaScript, le bouton « Continuer » dans <noscript> prend le relais. */
(function () {
  "use strict";
  var form = document.getElementById("autosubmit");
  if (!form) { return; }
  var fallback = form.querySelector(".js-fallback");
  function reveal() { if (fallback) { fallback.hidden = false; } }
  /* Retour arrière (cache de page) : on ne renvoie pas, on montre le bouton. */
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { reveal(); }
  });
  /* Si l'envoi tarde, le bouton reste disponible. */
  window.setTimeout(reveal, 3000);
  form.submit();
}());
