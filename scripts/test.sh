#!/usr/bin/env bash
# `npm test`: installs the Debian packages the suite needs when some are missing (it says
# which), then runs the suite on both metadata stores (a matrix, not a copy of the tests):
#   1. the whole suite on the embedded SQLite store (the default);
#   2. the API suite (test/integration) again with SNAPDB_TEST_STORE=postgres: every harness
#      then runs on a PostgreSQL store of its own (fleet mode), see test/helpers/store-matrix.ts.
# Both legs always run (at the same time, see below); the exit status is non-zero when either failed. Extra arguments go to
# both `bun test` runs (CI adds its reporter); a `--reporter-outfile=X.xml` becomes
# `X-postgres.xml` for the second leg, so each leg writes its own report. Paths or filters
# among the arguments make both legs run just those.
# SNAPDB_TEST_STORES=sqlite or =postgres runs one leg only (default: both).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
bash scripts/install-test-deps.sh || exit 1

# Left out of the PostgreSQL leg: files where a second run adds nothing, because the store
# never decides their outcome.
#   openapi-lint, openapi, operation-ids, response-schemas: the served OpenAPI document
#     (redocly lint is the slowest of them); it is built from the routes, not from the store.
#   prometheus-alerts: promtool on the alerting rules and their unit tests.
#   store-copy: copies the embedded store into PostgreSQL; its source is SQLite by design.
#   pg-migrate: the PostgreSQL schema's migrations on a server of its own, no harness.
#   cli: the CLI's arguments, config printing and `migrate` of the embedded store (pg-migrate
#     covers PostgreSQL's).
#   storage-local, wal-scan: no store at all (the local storage driver; WAL segments read
#     against pg_waldump).
# Daemons started by the API suite (test/helpers/daemon.ts) run on a PostgreSQL store too.
PG_LEG_EXCLUDE=(
  openapi-lint openapi operation-ids response-schemas
  prometheus-alerts
  store-copy pg-migrate
  cli storage-local wal-scan
)

sqlite_args=()
pg_args=()
filtered=0
expect_value=0
for arg in "$@"; do
  if [ "$expect_value" = 1 ]; then
    expect_value=0
  elif [[ "$arg" == -* ]]; then
    # bun test options whose value comes as the next argument.
    case "$arg" in
      --timeout | --reporter | --reporter-outfile | -t | --test-name-pattern | --preload | --rerun-each | --seed | --coverage-reporter | --coverage-dir | --max-concurrency) expect_value=1 ;;
    esac
  else
    filtered=1
  fi
  sqlite_args+=("$arg")
  case "$arg" in
    --reporter-outfile=*.xml) pg_args+=("${arg%.xml}-postgres.xml") ;;
    --reporter-outfile=*) pg_args+=("${arg}-postgres") ;;
    *) pg_args+=("$arg") ;;
  esac
done
# `--reporter-outfile X` (two arguments): the value is renamed the same way.
for i in "${!pg_args[@]}"; do
  if [ "${pg_args[$i]}" = "--reporter-outfile" ] && [ $((i + 1)) -lt ${#pg_args[@]} ]; then
    value="${pg_args[$((i + 1))]}"
    if [[ "$value" == *.xml ]]; then pg_args[i + 1]="${value%.xml}-postgres.xml"; else pg_args[i + 1]="${value}-postgres"; fi
  fi
done

pg_files=()
if [ "$filtered" = 0 ]; then
  for f in test/integration/*.test.ts; do
    name=$(basename "$f" .test.ts)
    skip=0
    for x in "${PG_LEG_EXCLUDE[@]}"; do [ "$name" = "$x" ] && skip=1; done
    [ "$skip" = 0 ] && pg_files+=("./$f")
  done
fi

legs="${SNAPDB_TEST_STORES:-both}"
parallel=0
[ "$legs" = both ] && [ "${SNAPDB_TEST_SERIAL:-0}" != 1 ] && parallel=1

# Files that mostly wait on the wall clock (three daemons over three real minutes): when the
# legs run at the same time they run in the second process, after the PostgreSQL leg's
# files, so the two processes end at about the same time. They set up their own stores.
WALL_CLOCK_FILES=(test/reliability/fleet-three.test.ts)
moved=()
if [ "$filtered" = 0 ] && [ "$parallel" = 1 ]; then
  for f in "${WALL_CLOCK_FILES[@]}"; do [ -f "$f" ] && moved+=("./$f"); done
fi
sqlite_files=()
if [ ${#moved[@]} -gt 0 ]; then
  while IFS= read -r f; do
    keep=1
    for m in "${moved[@]}"; do [ "./$f" = "$m" ] && keep=0; done
    [ "$keep" = 1 ] && sqlite_files+=("./$f")
  done < <(find test -name '*.test.ts' | sort)
fi
sqlite_status=0
pg_status=0
# Both legs run at the same time (SNAPDB_TEST_SERIAL=1: one after the other): much of the
# suite waits on real time (schedules' minutes, leases, daemons starting), so on two cores
# the pair takes little longer than the longer leg. Each leg has its own servers, ports and
# temp dirs. The PostgreSQL leg's output is kept aside and printed after the first leg's.
pg_leg() {
  echo "== test leg 2: the API suite on a PostgreSQL store (SNAPDB_TEST_STORE=postgres)" >&2
  SNAPDB_TEST_STORE=postgres bun test --timeout 60000 "${pg_args[@]}" "${pg_files[@]}" "${moved[@]}"
}
pg_pid=""
pg_log=""
if [ "$parallel" = 1 ]; then
  pg_log=$(mktemp -t snapdb-test-leg-postgres.XXXXXX)
  pg_leg >"$pg_log" 2>&1 &
  pg_pid=$!
fi
if [ "$legs" != postgres ]; then
  echo "== test leg 1: the whole suite on the embedded SQLite store" >&2
  SNAPDB_TEST_STORE=sqlite bun test --timeout 60000 "${sqlite_args[@]}" "${sqlite_files[@]}"
  sqlite_status=$?
fi
if [ -n "$pg_pid" ]; then
  wait "$pg_pid"
  pg_status=$?
  cat "$pg_log" >&2
  rm -f "$pg_log"
elif [ "$legs" != sqlite ]; then
  pg_leg
  pg_status=$?
fi
echo "== test legs: sqlite exit ${sqlite_status}, postgres exit ${pg_status}" >&2
[ "$sqlite_status" -eq 0 ] && [ "$pg_status" -eq 0 ]
