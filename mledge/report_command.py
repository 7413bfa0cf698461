"""``mledge report``: runs, bundles and bench results as one HTML page a person can look at."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("runs", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--bundles", "bundles", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="A bundle whose facts to show (repeat the option for several).")
@click.option("--bench", type=click.Path(exists=True, dir_okay=False),
              help="The output of mledge edge bench --json: the side-by-side charts.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--title", default="multilabel-edge report", show_default=True, help="The page's title.")
@click.option("--force", is_flag=True,
              help="Replace --out if it is an earlier report of mledge's (never another file).")
def report(runs, bundles, bench, out, title, force):
    """One self-contained HTML file from RUNs, bundles and bench JSON: it opens offline (inline SVG,
    no script, no font or image from the network) and needs no TensorFlow."""
    from report.collect import ReportError
    from report.page import build_report
    from toolkit.atomic import write_atomic
    from toolkit.errors import UserError
    from toolkit.outputs import check_output_file

    out = Path(out)
    if not (runs or bundles or bench):
        raise UserError("report needs at least one RUN, --bundles or --bench")
    if out.parent.exists() and not out.parent.is_dir():
        raise UserError(f"{out}: {out.parent} is a file, not a folder")
    check_output_file(out, force, (*runs, *bundles))
    try:
        html = build_report(list(runs), list(bundles), bench, title)
    except ReportError as err:
        raise UserError(str(err)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, html)
    click.echo(f"wrote {out} ({len(html) / 1024:.0f} kB): open it in a browser")
