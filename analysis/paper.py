"""The paper's numbers (``analysis/paper_results.yaml``) as one long table, and look-ups into it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

PAPER_RESULTS = Path(__file__).with_name("paper_results.yaml")
COLUMNS = ("table", "row", "column", "value", "unit", "citation", "estimated")


def load_paper_results(path: str | Path = PAPER_RESULTS) -> pd.DataFrame:
    """One line per cell: table, row, column, value (NaN for the paper's "-"), unit, citation, estimated.

    ``frame.attrs["citations"]`` maps every table, those without values too (Fig. 3a), to its citation.
    """
    tables = yaml.safe_load(Path(path).read_text())
    records = []
    for table, entry in tables.items():
        estimated = {tuple(cell) for cell in entry.get("estimated", [])}
        for row, columns in entry["rows"].items():
            for column, value in columns.items():
                records.append(
                    (
                        table,
                        row,
                        column,
                        float("nan") if value is None else float(value),
                        entry["unit"],
                        entry["citation"],
                        (row, column) in estimated,
                    )
                )
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    frame.attrs["citations"] = {table: entry["citation"] for table, entry in tables.items()}
    return frame


def citation(paper: pd.DataFrame, table: str) -> str:
    """The citation line of a paper table, e.g. "Li et al., ECCV 2020, Table 2: ..."."""
    citations = paper.attrs["citations"]
    if table not in citations:
        raise KeyError(f"no paper table {table!r}; known: {sorted(citations)}")
    return citations[table]


def lookup(paper: pd.DataFrame, table: str, row: str, column: str) -> pd.Series:
    """The paper's cell as a row of ``paper`` (value NaN where the paper prints "-"); KeyError if it has none."""
    match = paper[(paper["table"] == table) & (paper["row"] == row) & (paper["column"] == column)]
    if match.empty:
        raise KeyError(f"paper_results.yaml has no cell {table} / {row!r} / {column!r}")
    return match.iloc[0]
