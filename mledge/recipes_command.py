"""``mledge recipes``: the recipes with what each is for and what it measured; ``recipes show NAME``."""

from __future__ import annotations

import click


@click.group("recipes", invoke_without_command=True)
@click.pass_context
def recipes(ctx: click.Context) -> None:
    """The named recipes (mledge train DATA --recipe NAME --out RUN): what each is for and its figures on
    the shared VOC 2007 copy, from the committed bench-recipes records (blank: not measured yet).
    Pi 4 / Pi 5: a roofline ESTIMATE from the bundle's multiply-accumulates and bytes, not a measurement."""
    if ctx.invoked_subcommand is None:
        click.echo(table())


def table() -> str:
    from edge.roofline import BOARDS, estimate_ms
    from edge.text_table import format_rows
    from toolkit.recipes import RECIPES, figures

    rows = []
    for recipe in RECIPES.values():
        record = figures(recipe.name)
        f = record["figures"] if record else {}
        row = {"recipe": recipe.name, "for": recipe.purpose, "val_mAP": f.get("bundle_mAP_area"),
               "MB": f.get("MB"), "ms_1thr": f.get("e2e_p50_1t")}
        for board_name, board in BOARDS.items():
            short = board_name.split(" (")[0]
            row[f"{short} ms (est.)"] = (round(recipe.invocations * estimate_ms(f["macs"], f["weight_bytes"],
                                                                                recipe.quant, board), 1)
                                         if f.get("macs") else None)
        row["train_min"] = round(f["train_s"] / 60) if f.get("train_s") else None
        row["measured on"] = record["machine"]["cpu"] if record else "not measured yet"
        rows.append(row)
    return format_rows(rows)


@recipes.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Every stage of recipe NAME and every option it sets, as the commands it runs."""
    from toolkit.recipes import get

    recipe = get(name)
    click.echo(f"{recipe.name} (version {recipe.version}): {recipe.purpose}")
    flip = ", each photo averaged with its mirror" if recipe.flip_average else ""
    click.echo(f"architectures: {', '.join(recipe.archs)}; exported as {recipe.quant}{flip} "
               f"(calibrated on {recipe.calib_images} photos)"
               + (f"; needs: {', '.join(f'mledge weights import {w}' for w in recipe.weights)}" if recipe.weights
                  else ""))
    for number, stage in enumerate(recipe.stages, 1):
        if stage.export:
            click.echo(f"  {number}. {stage.name}: mledge export <the stage before> --quant {stage.export}")
        else:
            options = " ".join(a.replace("{stage:", "RUN/stages/").replace("}", "") for a in stage.train)
            click.echo(f"  {number}. {stage.name}: mledge train DATA {options}")
