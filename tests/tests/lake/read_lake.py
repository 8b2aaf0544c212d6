"""Reads the analytics lake as another engine would: the manifest names
each table's files, pyarrow reads them, pandas counts. Prints one JSON
object, {"facts": counts, "versions": counts}, where counts is programme ->
{"enrolled": participants enrolled, "job": of them, those with a status in
outcome group `job`}: once from the typed facts, retracted events left out,
once from the participants' current versions, voided ones left out."""
import json
import sys
from pathlib import Path

import pandas
import pyarrow
import pyarrow.parquet

lake = Path(sys.argv[1])
manifest = json.loads((lake / "manifest.json").read_text())


def table(name):
    files = [part["files"][name] for part in manifest["parts"] if name in part["files"]]
    return pyarrow.concat_tables(pyarrow.parquet.read_table(lake / f) for f in files).to_pandas()


retracted = set(table("retractions")["retracted_event_id"])
enrolments = table("enrolments")
enrolments = enrolments[~enrolments["event_id"].isin(retracted)]
statuses = table("status_changes")
statuses = statuses[~statuses["event_id"].isin(retracted)]
enrolled = enrolments[["program", "participant"]].drop_duplicates()
job = statuses[statuses["outcome_group"] == "job"][["program", "participant"]].drop_duplicates()
job = job.merge(enrolled, on=["program", "participant"])
facts = {
    program: {
        "enrolled": int((enrolled["program"] == program).sum()),
        "job": int((job["program"] == program).sum()),
    }
    for program in sorted(enrolled["program"].unique())
}

voided = set(table("participant_voids")["version"])
versions = table("participant_versions")
current = versions[
    versions["valid_to"].isna() & versions["recorded_to"].isna() & ~versions["version"].isin(voided)
]
from_versions = {
    program: {
        "enrolled": int(len(rows)),
        "job": int(rows["first_job_on"].notna().sum()),
    }
    for program, rows in current.groupby("program")
}
print(json.dumps({"facts": facts, "versions": from_versions}))
