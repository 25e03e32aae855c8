// Swagger UI's files, embedded into the compiled binary (`with { type: "file" }`), so
// /swagger/ works on a host with no internet access.
import bundleJs from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import presetJs from "swagger-ui-dist/swagger-ui-standalone-preset.js" with { type: "file" };
import css from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import favicon from "swagger-ui-dist/favicon-32x32.png" with { type: "file" };

export const SWAGGER_ASSETS: Record<string, { path: string; type: string }> = {
  "swagger-ui-bundle.js": { path: bundleJs, type: "text/javascript; charset=utf-8" },
  "swagger-ui-standalone-preset.js": { path: presetJs, type: "text/javascript; charset=utf-8" },
  "swagger-ui.css": { path: css, type: "text/css; charset=utf-8" },
  "favicon-32x32.png": { path: favicon, type: "image/png" },
};
