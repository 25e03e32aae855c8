/**
 * The Swagger UI page. Every URL in it is relative to /swagger/ (the daemon redirects
 * /swagger there), so it also works behind a reverse proxy that mounts snapdb on a sub-path.
 */
export const SWAGGER_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>snapdb API</title>
  <link rel="icon" type="image/png" href="assets/favicon-32x32.png" />
  <link rel="stylesheet" href="assets/swagger-ui.css" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="assets/swagger-ui-bundle.js"></script>
  <script src="assets/swagger-ui-standalone-preset.js"></script>
  <script src="init.js"></script>
</body>
</html>
`;

/** Kept out of the page so a strict Content-Security-Policy (no inline script) holds. */
export const SWAGGER_INIT = `window.ui = SwaggerUIBundle({
  url: "json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  // The default validator badge loads from validator.swagger.io: no request leaves the machine.
  validatorUrl: null,
});
`;
