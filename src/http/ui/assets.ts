// The dashboard's script and styles as strings, computed by the macros at bundle time
// (see bundle.ts). Imported lazily by the routes: a daemon nobody opens /ui/ on never builds them.
import { uiScript, uiStyles } from "./bundle.ts" with { type: "macro" };

export const UI_SCRIPT: string = uiScript();
export const UI_STYLES: string = uiStyles();
