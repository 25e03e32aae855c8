/**
 * The attacker of the host-boundary race tests: a process of another user (`uid`) that
 * exchanges each pair of names with renameat2(RENAME_EXCHANGE) in a loop, as fast as it can,
 * until `seconds` have passed or it is stopped; then it puts every pair back as it found it.
 * Python with ctypes, because Bun has no renameat2 and no setuid.
 */
const SWAPPER = `
import ctypes, os, signal, sys, time
uid = int(sys.argv[1]); seconds = float(sys.argv[2]); pairs = sys.argv[3:]
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
os.setgroups([]); os.setgid(uid); os.setuid(uid)
libc = ctypes.CDLL("libc.so.6", use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
names = [(pairs[i].encode(), pairs[i + 1].encode()) for i in range(0, len(pairs), 2)]
flips = [0] * len(names)
end = time.time() + seconds
while time.time() < end and not stop:
    for i, (a, b) in enumerate(names):
        if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
            sys.exit("renameat2: errno %d" % ctypes.get_errno())
        flips[i] += 1
# Leave every pair as it was found.
for i, (a, b) in enumerate(names):
    if flips[i] % 2:
        libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
print(" ".join(map(str, flips)), flush=True)
`;

/** `nobody`: the other user the swapper becomes. */
export const NOBODY = 65534;

/** Starts the swapper on `pairs` ([a, b, c, d] exchanges a↔b and c↔d); `stop()` ends it and gives how often each pair was exchanged. */
export function startRenameSwapper(pairs: string[], seconds: number, uid = NOBODY) {
  const proc = Bun.spawn(["python3", "-c", SWAPPER, String(uid), String(seconds), ...pairs], { stdout: "pipe", stderr: "pipe" });
  return {
    async stop(): Promise<number[]> {
      proc.kill("SIGTERM");
      await proc.exited;
      return (await new Response(proc.stdout).text()).trim().split(" ").map(Number);
    },
  };
}
