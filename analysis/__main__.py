"""``python -m analysis <target> [--scale smoke] [--source folders|mlflow]``: write a target's tables and figures.

``python -m analysis runs`` lists every run found under the runs root, whoever launched it."""

import argparse
import sys
from pathlib import Path

from analysis.audit import write_audit
from analysis.report import Context, EmptyResultsError, write_results
from analysis.runs import runs_listing
from analysis.style import use_file_backend
from reproduce.cli import parse_seeds
from reproduce.plan import SCALES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    parser.add_argument(
        "target",
        help="table1, table2, table3, table4, table5, table6, fig1, fig3a, fig3b, figures, all, runs (list the runs "
        "found), or audit (Table 1(a)'s GPU-hours against a FLOP lower bound; needs no runs and no data)",
    )
    parser.add_argument(
        "--scale",
        default="smoke",
        choices=SCALES,
        help="which runs count (runs/<scale>/...); results are named <target>_<scale>, or <target> "
        "at the paper's scale",
    )
    parser.add_argument("--seeds", type=parse_seeds, default=None, help="e.g. 0,1,2 (default: every finished seed)")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="the runs root (run folders)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="where tables and figures go")
    parser.add_argument("--data-root", type=Path, default=Path("data"), help="to say which data sets are missing")
    parser.add_argument(
        "--source",
        choices=("folders", "mlflow"),
        default="folders",
        help="read runs from the run folders (default) or from the MLflow store",
    )
    parser.add_argument("--mlflow-uri", default="sqlite:///mlruns.db")
    args = parser.parse_args(argv)
    if args.target == "audit":
        use_file_backend()
        for path in write_audit(args.results):
            print(f"wrote {path}")
        return
    context = Context(args.scale, args.runs, args.results, args.data_root, args.seeds, args.source, args.mlflow_uri)
    if args.target == "runs":
        print(runs_listing(context.read()))
        return
    use_file_backend()
    try:
        write_results(args.target, context)
    except EmptyResultsError as error:
        sys.exit(f"python -m analysis {args.target}: {error}")


if __name__ == "__main__":
    main()
