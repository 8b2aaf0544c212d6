"""Reads a funder extract back as a funder's tools would: the workbook with
openpyxl, the CSV and Parquet files with pandas. Prints one JSON object:
{"xlsx": {sheet: rows}, "percent": {sheet: [number formats of row 2]},
 "frozen": {sheet: cell}, "csv": {file: rows}, "parquet": {file: {"dtypes", "rows"}}}."""
import json
import sys
from pathlib import Path

import openpyxl
import pandas

folder = Path(sys.argv[1])
out = {"xlsx": {}, "formats": {}, "frozen": {}, "csv": {}, "parquet": {}}
book = openpyxl.load_workbook(folder / "report.xlsx")
for sheet in book.worksheets:
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    out["xlsx"][sheet.title] = rows
    out["frozen"][sheet.title] = sheet.freeze_panes
    out["formats"][sheet.title] = [c.number_format for c in sheet[2]] if sheet.max_row >= 2 else []
for path in sorted(folder.glob("*.csv")):
    frame = pandas.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    out["csv"][path.stem] = frame.values.tolist()
for path in sorted(folder.glob("*.parquet")):
    frame = pandas.read_parquet(path, dtype_backend="pyarrow")
    out["parquet"][path.stem] = {
        "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
        "rows": json.loads(frame.to_json(orient="values")),
    }
print(json.dumps(out, ensure_ascii=False, default=str))
