"""The ``mledge`` command line. Heavy imports (TensorFlow, pandas) live inside the commands, so
``mledge edge ...`` runs on a board that has only numpy, Pillow and a TFLite interpreter."""

from __future__ import annotations

import os
import sys

import click

from mledge.data_commands import data
from mledge.edge_commands import edge
from mledge.export_command import export_cmd
from mledge.train_commands import classes, compare, evaluate, runs, train, weights
from toolkit.errors import UserError

# Before any command imports TensorFlow: its C++ start-up chatter (set 0 to see it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _Group(click.Group):
    """Turns user mistakes (UserError, a bundle or image error) into one line on stderr and exit 2."""

    def invoke(self, ctx):
        from edge.bundle import BundleError
        from edge.label_files import DatasetError
        from edge.preprocess import ImageError

        try:
            return super().invoke(ctx)
        except (UserError, BundleError, ImageError, DatasetError) as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: finished epochs and models are kept (continue with --resume)", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="multilabel-edge")
def main() -> None:
    """multilabel-edge: multi-label image classification from Keras training to the edge.

    Train the study's three architectures (20 independent CNNs, a shared trunk with 20 heads, one
    multi-output CNN) on a VOC-layout dataset, export them to TFLite bundles in five quantizations,
    and compare them side by side on the device that will run them.
    """


main.add_command(data)
main.add_command(train)
main.add_command(evaluate)
main.add_command(compare)
main.add_command(export_cmd)
main.add_command(weights)
main.add_command(runs)
main.add_command(classes)
main.add_command(edge)

if __name__ == "__main__":
    main()
