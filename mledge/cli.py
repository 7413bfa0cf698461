"""The ``mledge`` command line. Heavy imports (TensorFlow, pandas) live inside the commands, so
``mledge edge ...`` runs on a board that has only numpy, Pillow and a TFLite interpreter."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from mledge.data_commands import data
from mledge.edge_commands import edge
from mledge.edge_loop_commands import serve_cmd, watch_cmd
from mledge.export_command import export_cmd
from mledge.recipes_command import recipes
from mledge.report_command import report
from mledge.run_commands import classes, compare, evaluate, runs, weights
from mledge.train_commands import train
from toolkit.atomic import disk_full, is_disk_full
from toolkit.errors import UserError

edge.add_command(watch_cmd)
edge.add_command(serve_cmd)

# Before any command imports TensorFlow: its C++ start-up chatter (set 0 to see it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """The one place every command's errors end: a user mistake (a bad option, path, dataset, bundle
    or image) is one line on stderr and exit 2; anything else is a bug, said in one line (exit 1)
    unless MLEDGE_DEBUG=1 asks for the traceback."""

    def invoke(self, ctx):
        from edge.bundle import BundleError
        from edge.label_files import DatasetError
        from edge.preprocess import ImageError

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.UsageError as err:  # a bad option or argument of a subcommand: one line, with where to look
            where = err.ctx.command_path if err.ctx else "mledge"
            fail(f"{err.format_message()} (see {where} --help)", 2)
        except (UserError, BundleError, ImageError, DatasetError) as err:
            fail(str(err), 2)
        except (OSError, RuntimeError) as err:  # the disk, not us: full, read-only, permissions
            if is_disk_full(err):
                fail(str(disk_full(Path(err.filename if getattr(err, "filename", None) else "."))), 2)
            if isinstance(err, RuntimeError):
                internal(err)
            fail(f"{err.filename + ': ' if err.filename else ''}{err.strerror or err}", 2)
        except KeyboardInterrupt:
            click.echo("interrupted: finished epochs and models are kept (continue with --resume)", err=True)
            sys.exit(130)
        except Exception as err:
            internal(err)


def internal(err: Exception) -> None:
    if os.environ.get("MLEDGE_DEBUG") == "1":
        raise err
    fail(f"internal error, a bug in mledge ({type(err).__name__}: {str(err)[:200]}); "
         f"run again with MLEDGE_DEBUG=1 for the traceback", 1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="multilabel-edge")
def main() -> None:
    """multilabel-edge: multi-label image classification from Keras training to the edge.

    Train the study's three architectures (20 independent CNNs, a shared trunk with 20 heads, one
    multi-output CNN) on a VOC, CSV or COCO dataset, export them to TFLite bundles in five quantizations,
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
main.add_command(report)
main.add_command(recipes)

if __name__ == "__main__":
    main()
