import { UsageError, type Command } from "./command.ts";
import { bashCompletion, fishCompletion, zshCompletion, type CompletionSpec } from "./completion-scripts.ts";
import { COMMANDS } from "./registry.ts";

const SHELLS = { bash: bashCompletion, zsh: zshCompletion, fish: fishCompletion } as const;

export const completionCommand: Command = {
  name: "completion",
  summary: "print a shell completion script: bash, zsh or fish",
  positionals: true,
  completes: Object.keys(SHELLS),
  usage: `snapdb completion bash|zsh|fish

Prints a completion script for the shell (commands and their flags):
  bash   source <(snapdb completion bash)    or save it in /etc/bash_completion.d/snapdb
  zsh    snapdb completion zsh > "\${fpath[1]}/_snapdb"
  fish   snapdb completion fish > ~/.config/fish/completions/snapdb.fish`,
  options: {},
  async run(_values, positionals) {
    const [shell, ...extra] = positionals;
    if (!shell || !(shell in SHELLS)) throw new UsageError(`name the shell: ${Object.keys(SHELLS).join(", ")}`);
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const commands = await Promise.all(COMMANDS.map((c) => c.load()));
    const specs: CompletionSpec[] = commands.map((c) => ({
      name: c.name,
      summary: c.summary,
      flags: Object.entries(c.options).map(([long, o]) => ({ long, short: o.short, value: o.type === "string" })),
      words: c.completes ?? [],
    }));
    process.stdout.write(SHELLS[shell as keyof typeof SHELLS](specs));
    return 0;
  },
};
