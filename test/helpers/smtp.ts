import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, onExit, waitFor } from "./servers.ts";
import { tempDir } from "./tmp.ts";

/**
 * A real SMTP server: Debian's python3-aiosmtpd, on loopback, requiring AUTH LOGIN/PLAIN
 * with the given user and password (without TLS: loopback only), storing every accepted
 * message in a Maildir that the test reads.
 */
const SERVER = `
import sys, signal
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword
host, port, maildir, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def check(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password)
c = Controller(Mailbox(maildir), hostname=host, port=port, authenticator=check, auth_require_tls=False, auth_required=True)
c.start()
print("ready", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
c.stop()
`;

export interface SmtpServer {
  host: string;
  port: number;
  /** Raw RFC 5322 messages received so far. */
  messages(): string[];
  stop(): void;
}

export async function startSmtp(user: string, password: string): Promise<SmtpServer> {
  const dir = tempDir("snapdb-smtp");
  const script = join(dir.path, "smtpd.py");
  writeFileSync(script, SERVER);
  const maildir = join(dir.path, "maildir"); // must not exist yet: Mailbox creates it
  const port = await freePort();
  // /usr/bin/python3: the Debian interpreter that has aiosmtpd (another python3 may come first on PATH).
  const proc = Bun.spawn(["/usr/bin/python3", script, "127.0.0.1", String(port), maildir, user, password], { stdout: "pipe", stderr: "pipe" });
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
    messages() {
      const dirNew = join(maildir, "new");
      if (!existsSync(dirNew)) return [];
      return readdirSync(dirNew)
        .sort()
        .map((f) => readFileSync(join(dirNew, f), "utf8"));
    },
    stop() {
      proc.kill("SIGTERM");
      forget();
      dir.cleanup();
    },
  };
}
