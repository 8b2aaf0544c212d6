# A psycopg client cancels a runaway statement after one second, then the
# same connection answers again. Prints the outcome for the Rust test.
import sys, threading, time

import psycopg

# Host, port, user and token come from libpq's PG* environment.
conn = psycopg.connect("", autocommit=True)
started = time.time()
threading.Timer(1.0, conn.cancel).start()
try:
    conn.execute("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r").fetchall()
    print("finished")
except psycopg.errors.QueryCanceled as e:
    print(f"cancelled after {time.time() - started:.1f} s: {str(e).strip()}")
print("then", conn.execute("SELECT count(*) FROM events").fetchone()[0])
