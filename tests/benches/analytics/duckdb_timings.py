"""Times the benchmark's queries in DuckDB over the exported Parquet tables.

Usage: python duckdb_timings.py QUERIES.json PARQUET_DIR RUNS
Prints a JSON object: query name -> best seconds of RUNS runs.
"""
import json
import sys
import time

import duckdb

queries = json.load(open(sys.argv[1]))
folder, runs = sys.argv[2], int(sys.argv[3])
con = duckdb.connect()
for table in ["participants", "status_spells", "measurement_scores", "measurements"]:
    con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{folder}/{table}.parquet')")
best = {}
for name, sql in queries.items():
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - started)
    best[name] = min(times)
print(json.dumps(best))
