import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, onExit, waitFor } from "./servers.ts";
import { tempDir } from "./tmp.ts";

/**
 * A real SMTP server: Debian's python3-aiosmtpd, on loopback, requiring AUTH LOGIN/PLAIN
 * with the given user and password, storing every accepted message in a Maildir that the
 * test reads. Three modes:
 * - `plain`: no TLS at all (AUTH in clear is accepted: loopback only);
 * - `starttls`: STARTTLS offered and required before anything else, AUTH only after it;
 * - `implicit`: TLS from the first byte (what port 465 does).
 * The TLS modes use a self-signed certificate made by `openssl req` for 127.0.0.1 (`caFile`:
 * a client trusts it through NODE_EXTRA_CA_CERTS). The server also records every AUTH
 * attempt (and whether it came over TLS) and every byte it received in clear, so a test can
 * show a password never crossed the wire unencrypted.
 */
const SERVER = `
import sys, signal, ssl
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
host, port, maildir, user, password, mode, cert, key, auths, cleartext = sys.argv[1:11]
port = int(port)

def over_tls(server):
    return server.transport is not None and server.transport.get_extra_info("ssl_object") is not None

def check(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
    with open(auths, "a") as f:
        f.write(("tls" if over_tls(server) else "clear") + " " + ("ok" if ok else "refused") + "\\n")
    return AuthResult(success=ok)

class Recording(SMTP):
    # Bytes that reach the protocol before TLS is up (never, with implicit TLS) went over the wire in clear.
    def connection_made(self, transport):
        if getattr(self, "_implicit", None) is None:
            self._implicit = transport.get_extra_info("ssl_object") is not None
        super().connection_made(transport)

    def data_received(self, data):
        if not self._implicit and self._tls_protocol is None:
            with open(cleartext, "ab") as f:
                f.write(data)
        super().data_received(data)

class Recorder(Controller):
    def factory(self):
        return Recording(self.handler, **self.SMTP_kwargs)

kwargs = dict(hostname=host, port=port, authenticator=check, auth_required=True)
if mode != "plain":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
if mode == "plain":
    kwargs.update(auth_require_tls=False)
elif mode == "starttls":
    kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
else:
    # aiosmtpd only knows of STARTTLS: the connection is TLS from the start, so AUTH is allowed.
    kwargs.update(ssl_context=ctx, auth_require_tls=False)
c = Recorder(Mailbox(maildir), **kwargs)
c.start()
print("ready", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
c.stop()
`;

export type SmtpMode = "plain" | "starttls" | "implicit";

export interface SmtpServer {
  host: string;
  port: number;
  mode: SmtpMode;
  /** The server's self-signed certificate (PEM file), for NODE_EXTRA_CA_CERTS; null in `plain` mode. */
  caFile: string | null;
  /** Raw RFC 5322 messages received so far. */
  messages(): string[];
  /** AUTH attempts so far: over TLS or in clear, accepted or refused. */
  auths(): { tls: boolean; ok: boolean }[];
  /** Everything clients sent before TLS was up (all of it in `plain` mode, nothing in `implicit`). */
  cleartext(): string;
  stop(): void;
}

export async function startSmtp(user: string, password: string, mode: SmtpMode = "plain"): Promise<SmtpServer> {
  const dir = tempDir("snapdb-smtp");
  const script = join(dir.path, "smtpd.py");
  writeFileSync(script, SERVER);
  const maildir = join(dir.path, "maildir"); // must not exist yet: Mailbox creates it
  const cert = join(dir.path, "cert.pem");
  const key = join(dir.path, "key.pem");
  const auths = join(dir.path, "auths.log");
  const cleartext = join(dir.path, "cleartext.log");
  appendFileSync(auths, "");
  appendFileSync(cleartext, "");
  if (mode !== "plain") {
    const req = Bun.spawnSync(
      ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=snapdb-test-smtp", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
      { stdout: "pipe", stderr: "pipe" },
    );
    if (req.exitCode !== 0) throw new Error(`openssl req failed: ${req.stderr.toString()}`);
  }
  const port = await freePort();
  // /usr/bin/python3: the Debian interpreter that has aiosmtpd (another python3 may come first on PATH).
  const proc = Bun.spawn(["/usr/bin/python3", script, "127.0.0.1", String(port), maildir, user, password, mode, cert, key, auths, cleartext], { stdout: "pipe", stderr: "pipe" });
  const forget = onExit(() => proc.kill("SIGKILL"));
  let out = "";
  void (async () => {
    for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
  })();
  await waitFor("aiosmtpd", () => out.includes("ready") || proc.exitCode !== null, 20_000);
  if (proc.exitCode !== null) throw new Error(`aiosmtpd exited ${proc.exitCode}: ${await new Response(proc.stderr).text()}`);
  return {
    host: "127.0.0.1",
    port,
    mode,
    caFile: mode === "plain" ? null : cert,
    messages() {
      const dirNew = join(maildir, "new");
      if (!existsSync(dirNew)) return [];
      return readdirSync(dirNew)
        .sort()
        .map((f) => readFileSync(join(dirNew, f), "utf8"));
    },
    auths() {
      return readFileSync(auths, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => ({ tls: l.startsWith("tls "), ok: l.endsWith(" ok") }));
    },
    cleartext: () => readFileSync(cleartext, "latin1"),
    stop() {
      proc.kill("SIGTERM");
      forget();
      dir.cleanup();
    },
  };
}
