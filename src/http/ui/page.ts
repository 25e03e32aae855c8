/**
 * The dashboard's one page. Static: the script fills it in. Every URL is relative to /ui/,
 * so it also works behind a reverse proxy that mounts snapdb on a sub-path.
 */
export function dashboardPage(assetVersion: string): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <link rel="icon" href="data:,">
  <title>snapdb dashboard</title>
  <link rel="stylesheet" href="assets/app.css?v=${assetVersion}">
  <script type="module" src="assets/app.js?v=${assetVersion}"></script>
</head>
<body>
  <a class="skip" href="#main">Skip to the dashboard</a>
  <header class="top">
    <h1>snapdb dashboard</h1>
    <p id="status" role="status" aria-live="polite">Loading…</p>
    <button type="button" id="refresh" hidden>Refresh</button>
  </header>
  <main id="main" tabindex="-1">
    <section id="login" aria-labelledby="login-title" hidden>
      <h2 id="login-title">Sign in</h2>
      <p id="login-error" class="error" role="alert" hidden></p>
      <p>On the daemon's host, run <code>snapdb ui-link --org ORG</code> and open the link it prints
        (once, within 5 minutes). Or paste a read-only API token (scope <code>backup.read</code>; a
        token that can change anything is refused); the page keeps it in memory only, until you
        close or reload it.</p>
      <form id="login-form">
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required>
        <button type="submit">Open the dashboard</button>
      </form>
    </section>
    <div id="dashboard" hidden>
      <p id="partial" class="notice" role="note" hidden></p>
      <section aria-labelledby="sources-title">
        <h2 id="sources-title">Data sources</h2>
        <ul class="legend" aria-label="Legend of the 30-day strip">
          <li><span class="day ok"></span> a backup succeeded</li>
          <li><span class="day failed"></span> failed, none succeeded</li>
          <li><span class="day missed"></span> missed: scheduled, nothing ran</li>
          <li><span class="day pending"></span> queued or running</li>
          <li><span class="day none"></span> nothing due</li>
          <li id="legend-unknown" hidden><span class="day unknown"></span> not loaded (see the note above)</li>
        </ul>
        <div class="scroll">
          <table id="sources">
            <caption>Every data source: the state of its last backup, its last success, its next scheduled run, the last 30 days, and the size and duration of its last backups.</caption>
            <thead>
              <tr>
                <th scope="col">Data source</th>
                <th scope="col">Last backup</th>
                <th scope="col">Last success</th>
                <th scope="col">Next run</th>
                <th scope="col">Last 30 days</th>
                <th scope="col">Size</th>
                <th scope="col">Duration</th>
              </tr>
            </thead>
            <tbody id="sources-body"></tbody>
          </table>
        </div>
      </section>
      <section aria-labelledby="queue-title">
        <h2 id="queue-title">Queue</h2>
        <div class="scroll">
          <table id="queue">
            <caption>Backups and restores queued or running now.</caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Kind</th>
                <th scope="col">Data source</th>
                <th scope="col">Status</th>
                <th scope="col">For</th>
                <th scope="col">Bytes so far</th>
              </tr>
            </thead>
            <tbody id="queue-body"></tbody>
          </table>
        </div>
      </section>
      <section aria-labelledby="failed-title">
        <h2 id="failed-title">Failed backups</h2>
        <div class="scroll">
          <table id="failed">
            <caption>Backup jobs that failed in the last 30 days, newest first, with their error.</caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Data source</th>
                <th scope="col">When</th>
                <th scope="col">Error</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody id="failed-body"></tbody>
          </table>
        </div>
      </section>
      <section aria-labelledby="drills-title">
        <h2 id="drills-title">Restore drills</h2>
        <div class="scroll">
          <table id="drills">
            <caption>Restore drills: each restores its data source's newest backup into a scratch database and checks it. The last run of each, with what it compared.</caption>
            <thead>
              <tr>
                <th scope="col">Drill</th>
                <th scope="col">Data source</th>
                <th scope="col">Last run</th>
                <th scope="col">Result</th>
                <th scope="col">Tables</th>
                <th scope="col">Rows compared</th>
                <th scope="col">Took</th>
                <th scope="col">Error</th>
              </tr>
            </thead>
            <tbody id="drills-body"></tbody>
          </table>
        </div>
      </section>
    </div>
  </main>
</body>
</html>
`;
}

/**
 * Only our own origin, no inline script or style element, no framing, no plugins. uPlot
 * sizes its canvas through the CSSOM (element.style), which style-src does not govern.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const UI_HEADERS = {
  "content-security-policy": UI_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
};
