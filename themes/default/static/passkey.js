/* Clés d'accès (WebAuthn) : ajout dans « Mon compte ENT » et connexion.
   Chaque formulaire marqué data-cle-acces="creer" ou "utiliser" reste
   caché sans JavaScript ou sans window.PublicKeyCredential : le code de
   vérification et les codes de secours restent utilisables. À l'envoi, le
   script demande au serveur un défi (POST avec le jeton CSRF du
   formulaire, réponse JSON), appelle navigator.credentials.create ou .get,
   met la réponse de l'appareil en JSON dans le champ « reponse » et envoie
   le formulaire : la page suivante est celle du serveur (suite de la
   connexion, codes de secours, ou message d'erreur). */
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[data-cle-acces]");
  if (!forms.length) { return; }
  var supported = window.PublicKeyCredential && navigator.credentials && window.fetch && window.URLSearchParams;
  if (!supported) {
    var notice = document.getElementById("cle-non-prise-en-charge");
    if (notice) { notice.hidden = false; }
    return;
  }

  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = window.atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return window.btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  /* Ce que le serveur attend (webauthn-rs) : les valeurs binaires en base64url. */
  function encode(credential) {
    var r = credential.response;
    var out = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      extensions: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      out.response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return out;
  }

  function message(error, creating, late) {
    var name = error && error.name;
    if (name === "Serveur") { return error.message; }
    if (name === "NotAllowedError" && late) {
      return "Le délai pour utiliser votre clé d'accès est dépassé. Recommencez.";
    }
    if (name === "NotAllowedError") {
      return creating
        ? "L'ajout de la clé d'accès a été annulé ou n'a pas été autorisé par votre appareil. Vous pouvez recommencer."
        : "La connexion avec votre clé d'accès a été annulée ou n'a pas été autorisée. Recommencez, ou saisissez un code de vérification.";
    }
    if (name === "AbortError") { return "L'opération a été annulée. Vous pouvez recommencer."; }
    if (name === "InvalidStateError") {
      return creating
        ? "Cette clé d'accès est déjà enregistrée pour votre compte."
        : "Cette clé d'accès n'est pas enregistrée pour votre compte.";
    }
    if (name === "NotSupportedError") {
      return "Votre appareil ne prend pas en charge ce type de clé d'accès.";
    }
    if (name === "SecurityError") {
      return "Votre navigateur refuse les clés d'accès sur cette adresse.";
    }
    if (name === "Reseau") {
      return "Le service ne répond pas. Vérifiez votre connexion et réessayez dans quelques instants.";
    }
    return creating
      ? "La clé d'accès n'a pas pu être ajoutée. Vous pouvez recommencer."
      : "La connexion avec votre clé d'accès a échoué. Recommencez, ou saisissez un code de vérification.";
  }

  function prepare(form) {
    var creating = form.getAttribute("data-cle-acces") === "creer";
    var out = document.getElementById(form.getAttribute("data-cle-erreur") || "");
    var button = form.querySelector("button[type=submit]");
    form.hidden = false;

    function show(text) {
      if (button) { button.disabled = false; }
      if (!out) { return; }
      out.textContent = text;
      out.hidden = false;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button) { button.disabled = true; }
      var body = new URLSearchParams();
      ["csrf_token", "jeton"].forEach(function (name) {
        var field = form.elements.namedItem(name);
        if (field) { body.set(name, field.value); }
      });
      var started = 0;
      var timeout = 0;
      fetch(form.getAttribute("data-options"), {
        method: "POST", body: body, credentials: "same-origin", cache: "no-store"
      }).catch(function () {
        throw { name: "Reseau" };
      }).then(function (response) {
        return response.json().then(function (answer) {
          if (!response.ok) { throw { name: "Serveur", message: answer.erreur }; }
          return answer;
        }, function () { throw { name: "Reseau" }; });
      }).then(function (answer) {
        form.elements.namedItem("defi").value = answer.defi;
        var options = answer.options.publicKey;
        options.challenge = toBytes(options.challenge);
        timeout = options.timeout || 0;
        started = Date.now();
        if (creating) {
          options.user.id = toBytes(options.user.id);
          (options.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
          return navigator.credentials.create({ publicKey: options });
        }
        (options.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
        return navigator.credentials.get({ publicKey: options });
      }).then(function (credential) {
        if (!credential) { throw { name: "NotAllowedError" }; }
        form.elements.namedItem("reponse").value = JSON.stringify(encode(credential));
        form.submit();
      }).catch(function (error) {
        var late = timeout > 0 && started > 0 && Date.now() - started >= timeout;
        show(message(error, creating, late));
      });
    });
  }

  for (var i = 0; i < forms.length; i++) { prepare(forms[i]); }
}());
