// One Swagger UI for the nine OpenAPI documents (3 services x 3 versions); the top bar switches.
(function () {
  "use strict";
  const schemas = JSON.parse(document.getElementById("api-schemas").textContent);
  const params = new URLSearchParams(window.location.search);
  window.ui = SwaggerUIBundle({
    urls: schemas,
    "urls.primaryName": params.get("schema") || "polls v3",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    persistAuthorization: true,
  });
})();
