/**
 * Realistic mixed rows for the PostgreSQL benchmarks: customers, orders (numbers, enums as
 * text, timestamps, nullable notes, a jsonb payload) and an events log with free text. Grown
 * in bounded batches until the database reaches a target size, so one server serves the
 * small size first and then grows to the large one.
 */
import type { PgServer } from "../test/helpers/postgres.ts";

const SCHEMA = `
SET ROLE snapdb_test;
CREATE TABLE IF NOT EXISTS customers (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, country char(2) NOT NULL, tier text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS orders (id bigint NOT NULL, customer_id bigint NOT NULL, created_at timestamptz NOT NULL, status text NOT NULL, amount numeric(12,2) NOT NULL, currency char(3) NOT NULL, items int NOT NULL, note text, payload jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS events (id bigint NOT NULL, at timestamptz NOT NULL, kind text NOT NULL, user_agent text NOT NULL, message text NOT NULL, data jsonb);
INSERT INTO customers
  SELECT g, 'Customer ' || g || ' ' || (ARRAY['Smith','Garcia','Müller','Rossi','Dubois','Novak','Kim','Silva'])[1 + g % 8],
         'user' || g || '@' || (ARRAY['example.com','mail.test','corp.example','shop.test'])[1 + g % 4],
         (ARRAY['DE','FR','US','GB','IT','ES','PL','BR','JP','IN'])[1 + g % 10], (ARRAY['free','pro','team','enterprise'])[1 + (g * 7) % 4],
         timestamptz '2019-01-01' + g * interval '37 seconds'
  FROM generate_series(1, 200000) g ON CONFLICT DO NOTHING;
`;

/** One batch of rows ids (from, to]; about 0.27 GB of heap per million orders + events. */
function batchSql(from: number, to: number): string {
  return `
SET ROLE snapdb_test;
INSERT INTO orders
  SELECT g, 1 + (g * 7919) % 200000, timestamptz '2020-01-01' + g * interval '3 seconds',
         (ARRAY['new','paid','shipped','delivered','refunded'])[1 + g % 5], round((random() * 2000)::numeric, 2),
         (ARRAY['EUR','USD','GBP'])[1 + g % 3], 1 + g % 9,
         CASE WHEN g % 4 = 0 THEN 'please leave the parcel at the door, ref ' || substr(md5(g::text), 1, 10) END,
         jsonb_build_object('sku', 'SKU-' || (g % 5000), 'qty', 1 + g % 7, 'tags', jsonb_build_array('t' || g % 13, 'c' || g % 17),
                            'ref', md5((g * 31)::text), 'gift', g % 11 = 0)
  FROM generate_series(${from + 1}::bigint, ${to}::bigint) g;
INSERT INTO events
  SELECT g, timestamptz '2021-01-01' + g * interval '1 second', (ARRAY['login','logout','view','search','purchase','error'])[1 + g % 6],
         (ARRAY['Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0','Mozilla/5.0 (Macintosh) Safari/605.1.15','curl/8.5.0','okhttp/4.12'])[1 + g % 4],
         'user ' || (g % 200000) || ' did ' || (ARRAY['open the cart','look at a product','pay with a card','search for shoes'])[1 + g % 4] || ' in ' || round(random() * 900)::int || ' ms',
         CASE WHEN g % 3 = 0 THEN jsonb_build_object('session', md5(g::text), 'page', g % 97) END
  FROM generate_series(${from + 1}::bigint, ${to}::bigint) g;
`;
}

export function dbBytes(pg: PgServer, database = "appdb"): number {
  return Number(pg.psql(`SELECT pg_database_size('${database}');`).trim());
}

/**
 * Adds batches until the database (`appdb` unless named) is at least `targetBytes`; returns the seconds it took.
 * Bounded: at most 200 batches (~50 GB), so a wrong size never loops forever.
 */
export function growTo(pg: PgServer, targetBytes: number, state: { rows: number }, database = "appdb", batch = 250_000): number {
  const t0 = performance.now();
  if (state.rows === 0) pg.psql(SCHEMA, database);
  for (let i = 0; i < 200 && dbBytes(pg, database) < targetBytes; i++) {
    pg.psql(batchSql(state.rows, state.rows + batch), database);
    state.rows += batch;
  }
  pg.psql("SET ROLE snapdb_test; VACUUM ANALYZE orders; VACUUM ANALYZE events;", database);
  return (performance.now() - t0) / 1000;
}
