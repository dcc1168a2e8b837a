# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long an index build without CONCURRENTLY blocks writes, by table size. Prints numbers, asserts nothing.

The 0.19.11-0.19.14 migrations build indexes this way (docs/upgrade.md). This builds the same kinds of index
(B-tree on a timestamp or an integer column, trigram GIN over name, body and alt_text) on tables of the shape of
Lemmy's, in a scratch schema, while a second connection tries one INSERT; it prints the build time and how long
that INSERT waited. The limit lemmy_upgrade_write_block_rows (default 100,000 rows) comes from these figures.

Needs a PostgreSQL server you may write to (with pg_trgm) and psycopg2 (in .venv). For example, a throwaway
cluster on a Unix socket:
  .venv/bin/python benchmarks/index_build_lock.py --dsn 'host=/var/run/postgresql port=26432 dbname=bench'
"""

from __future__ import annotations

import argparse
import threading
import time
import typing as t

import psycopg2  # pylint: disable=import-error

SCHEMA = "bench_index_build"

# Roughly the shape of a post: a title of ~60 characters, a body of ~400, sometimes alt text.
FILL_POST = """
INSERT INTO {schema}.post (name, body, alt_text, published)
SELECT md5(i::text) || ' ' || md5((i * 7)::text),
       repeat(md5((i * 13)::text) || ' ', 12),
       CASE WHEN i %% 5 = 0 THEN md5((i * 17)::text) END,
       now() - (i || ' seconds')::interval
FROM generate_series(1, %(rows)s) AS i
"""
FILL_LIKE = """
INSERT INTO {schema}.post_like (post_id, person_id, score, published)
SELECT i %% 50000, i %% 9973, 1, now() - (i || ' seconds')::interval FROM generate_series(1, %(rows)s) AS i
"""

CASES: list[tuple[str, str, str, list[int]]] = [
    ("btree post_like(published)", FILL_LIKE, "CREATE INDEX bench_idx ON {schema}.post_like (published)",
     [100_000, 1_000_000]),
    ("btree post_like(post_id)", FILL_LIKE, "CREATE INDEX bench_idx ON {schema}.post_like (post_id)",
     [100_000, 1_000_000]),
    ("gin trigram post(name, body, alt_text)", FILL_POST,
     "CREATE INDEX bench_idx ON {schema}.post USING gin (name gin_trgm_ops, body gin_trgm_ops, alt_text gin_trgm_ops)",
     [10_000, 100_000]),
]

WRITE = {
    "post_like": "INSERT INTO {schema}.post_like (post_id, person_id, score, published) VALUES (1, 1, 1, now())",
    "post": "INSERT INTO {schema}.post (name, body, published) VALUES ('x', 'y', now())",
}


def reset(conn: t.Any) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cur.execute("DROP SCHEMA IF EXISTS {0} CASCADE".format(SCHEMA))
        cur.execute("CREATE SCHEMA {0}".format(SCHEMA))
        cur.execute("CREATE TABLE {0}.post (id serial PRIMARY KEY, name text NOT NULL, body text, alt_text text,"
                    " published timestamptz NOT NULL)".format(SCHEMA))
        cur.execute("CREATE TABLE {0}.post_like (post_id int NOT NULL, person_id int NOT NULL, score smallint NOT NULL,"
                    " published timestamptz NOT NULL)".format(SCHEMA))
    conn.commit()


def measure(dsn: str, fill: str, build: str, rows: int) -> tuple[float, float, int]:
    """Build time, the INSERT's wait, and pg_class.reltuples after ANALYZE."""
    setup = psycopg2.connect(dsn)
    reset(setup)
    table = "post" if "{schema}.post " in fill else "post_like"
    with setup.cursor() as cur:
        cur.execute(fill.format(schema=SCHEMA), {"rows": rows})
        setup.commit()
        setup.autocommit = True
        cur.execute("ANALYZE {0}.{1}".format(SCHEMA, table))
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", ("{0}.{1}".format(SCHEMA, table),))
        reltuples = int(cur.fetchone()[0])
    builder = psycopg2.connect(dsn)
    writer = psycopg2.connect(dsn)
    writer.autocommit = True
    started = threading.Event()
    waited: list[float] = []

    def write_during_build() -> None:
        started.wait()
        time.sleep(0.05)  # let the build take its lock first; the wait measured below is the INSERT's
        t0 = time.monotonic()
        with writer.cursor() as wcur:
            wcur.execute(WRITE[table].format(schema=SCHEMA))
        waited.append(time.monotonic() - t0)

    thread = threading.Thread(target=write_during_build)
    thread.start()
    with builder.cursor() as bcur:
        t0 = time.monotonic()
        started.set()
        bcur.execute(build.format(schema=SCHEMA))
        builder.commit()
        build_seconds = time.monotonic() - t0
    thread.join()
    for conn in (builder, writer):
        conn.close()
    reset(setup)
    setup.close()
    return build_seconds, waited[0], reltuples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="libpq connection string of a scratch database")
    args = parser.parse_args()
    with psycopg2.connect(args.dsn) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
        cur.execute("SHOW maintenance_work_mem")
        mem = cur.fetchone()[0]
    print("PostgreSQL {0}, maintenance_work_mem {1}".format(version, mem))
    print("{0:<42} {1:>10} {2:>11} {3:>9} {4:>12}".format("index", "rows", "reltuples", "build s", "INSERT wait s"))
    for name, fill, build, sizes in CASES:
        for rows in sizes:
            build_s, wait_s, reltuples = measure(args.dsn, fill, build, rows)
            print("{0:<42} {1:>10,} {2:>11,} {3:>9.2f} {4:>12.2f}".format(name, rows, reltuples, build_s, wait_s))


if __name__ == "__main__":
    main()
