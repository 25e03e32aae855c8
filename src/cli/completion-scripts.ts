/** Shell completion scripts, generated from the commands' own flag tables so they cannot drift. */

export interface CompletionSpec {
  name: string;
  summary: string;
  flags: { long: string; short?: string; value: boolean }[];
  /** Words offered as the first positional. */
  words: string[];
}

const FILE_FLAGS = new Set(["config", "master-key-file", "output"]);
const DIR_FLAGS = new Set(["data-dir"]);

const flagWords = (c: CompletionSpec) => [...c.flags.flatMap((f) => [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])]), "--help"].join(" ");

export function bashCompletion(specs: CompletionSpec[]): string {
  const cases = specs.map((c) => `    ${c.name}) flags="${flagWords(c)}"; words="${c.words.join(" ")}" ;;`).join("\n");
  const fileFlags = specs.flatMap((c) => c.flags.filter((f) => FILE_FLAGS.has(f.long)).flatMap((f) => [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])]));
  return `# bash completion for snapdb. Load it with: source <(snapdb completion bash)
# or install it: snapdb completion bash > /etc/bash_completion.d/snapdb
_snapdb() {
  local cur prev cmd flags words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${specs.map((c) => c.name).join(" ")} help" -- "$cur") )
    return 0
  fi
  cmd="\${COMP_WORDS[1]}"
  flags=""
  words=""
  case "$cmd" in
${cases}
  esac
  case "$prev" in
    ${[...new Set(fileFlags)].join("|")}) COMPREPLY=( $(compgen -f -- "$cur") ); return 0 ;;
    ${[...DIR_FLAGS].map((f) => `--${f}`).join("|")}) COMPREPLY=( $(compgen -d -- "$cur") ); return 0 ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$flags" -- "$cur") )
  elif [ "$COMP_CWORD" -eq 2 ] && [ -n "$words" ]; then
    COMPREPLY=( $(compgen -W "$words" -- "$cur") )
  fi
  return 0
}
complete -o default -F _snapdb snapdb
`;
}

/** A word safe inside zsh single quotes. */
const zshQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function zshCompletion(specs: CompletionSpec[]): string {
  const commands = specs.map((c) => `    ${zshQuote(`${c.name}:${c.summary.replace(/:/g, "\\:")}`)}`).join("\n");
  const cases = specs.map((c) => `    ${c.name}) flags=(${flagWords(c)}); subwords=(${c.words.join(" ")}) ;;`).join("\n");
  return `#compdef snapdb
# zsh completion for snapdb. Install it: snapdb completion zsh > "\${fpath[1]}/_snapdb"
# or load it in a running shell: source <(snapdb completion zsh)
_snapdb() {
  local -a snapdb_commands flags subwords
  snapdb_commands=(
${commands}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'snapdb command' snapdb_commands
    return
  fi
  case $words[2] in
${cases}
  esac
  case $words[CURRENT-1] in
    --config|--master-key-file|--output|-o) _files; return ;;
    --data-dir) _files -/; return ;;
  esac
  if [[ $PREFIX == -* ]]; then
    compadd -- $flags
  elif (( CURRENT == 3 && $#subwords > 0 )); then
    compadd -- $subwords
  else
    _files
  fi
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _snapdb "$@"
else
  compdef _snapdb snapdb
fi
`;
}

/** A word safe inside fish single quotes. */
const fishQuote = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

export function fishCompletion(specs: CompletionSpec[]): string {
  const lines = ["# fish completion for snapdb. Install it: snapdb completion fish > ~/.config/fish/completions/snapdb.fish", "complete -c snapdb -f"];
  for (const c of specs) lines.push(`complete -c snapdb -n __fish_use_subcommand -a ${c.name} -d ${fishQuote(c.summary)}`);
  for (const c of specs) {
    const when = `-n ${fishQuote(`__fish_seen_subcommand_from ${c.name}`)}`;
    for (const w of c.words) lines.push(`complete -c snapdb ${when} -a ${w}`);
    for (const f of c.flags) {
      const short = f.short ? ` -s ${f.short}` : "";
      const value = f.value ? (FILE_FLAGS.has(f.long) || DIR_FLAGS.has(f.long) ? " -r -F" : " -r") : "";
      lines.push(`complete -c snapdb ${when} -l ${f.long}${short}${value}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
