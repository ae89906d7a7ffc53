"""What every ``mmm-eeg`` command shares: the Typer apps, the consoles, the error handling.

User mistakes (:class:`mmm_eeg.errors.UserInputError`) end with one message on stderr and exit
code 2; ``--verbose`` shows the traceback as well.
"""

from __future__ import annotations

import errno
import inspect
import logging
import warnings
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from mmm_eeg import __version__
from mmm_eeg.errors import UserInputError

app = typer.Typer(
    name="mmm-eeg",
    help="Topology-agnostic EEG representation learning (MMM).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# No markup in what we print: messages hold paths, channel names and pip extras in brackets
# ("mmm-eeg[onnx]") that rich markup would eat. Styles are applied with Text, explicitly.
console = Console(markup=False, highlight=False)

err_console = Console(stderr=True, markup=False, highlight=False)

#: errno values of a full disk, a file-size limit and an exhausted quota.
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}

benchmark_app = typer.Typer(help="Benchmarks on real data.", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")
corpus_app = typer.Typer(help="Inspect or merge feature corpora.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


def is_verbose() -> bool:
    """Whether ``--verbose`` was given: it sets the package logger to INFO (as MNE's does)."""
    return logging.getLogger("mmm_eeg").isEnabledFor(logging.INFO)


def quiet_lightning() -> None:
    """Lightning's INFO lines and tips only with ``--verbose``, and each line once.

    Importing Lightning gives its logger a handler of its own at INFO, which also propagates to
    ours (every line twice); so this runs after a training module has imported Lightning.
    """
    import lightning  # noqa: F401  (already imported by the training modules)

    level = logging.INFO if is_verbose() else logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):  # each sets INFO itself
        logging.getLogger(name).setLevel(level)
    logging.getLogger("lightning").propagate = False


def flag_hint(err: UserInputError) -> str:
    """The command-line flag of the Python parameter an error names, when there is one."""
    if err.parameter is None:
        return ""
    return f" (command-line option --{err.parameter.replace('_', '-')})"


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a UserInputError into one message and exit code 2; scope the command's warnings."""

    resumable = "resume" in inspect.signature(func).parameters
    rerun = (
        "rerun the same command (with --resume once a checkpoint or fold was written)"
        if resumable
        else "rerun the same command"
    )

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():  # for this command only
                if not is_verbose():
                    # Other libraries' notices (deprecations, Lightning's tips) mean nothing to a
                    # user of this command; mmm-eeg's own warnings still show.
                    warnings.filterwarnings("ignore", module=r"(?!mmm_eeg)")
                return func(*args, **kwargs)
        except UserInputError as err:
            if is_verbose():
                err_console.print_exception()
            print_error(f"{err}{flag_hint(err)}")
            raise typer.Exit(2) from None
        except OSError as err:
            if err.errno not in _DISK_FULL:
                raise
            if is_verbose():
                err_console.print_exception()
            print_error(
                f"no space left while writing {err.filename or 'output'} "
                f"({err.strerror}). Free some space and {rerun}: finished work is kept and "
                "the rest resumes.",
            )
            raise typer.Exit(1) from None

    return wrapper


def print_error(message: str) -> None:
    """``Error: message`` on stderr, the message printed as it is (no markup)."""
    err_console.print(Text.assemble(("Error:", "bold red"), " ", message), soft_wrap=True)


def print_note(label: str, message: str) -> None:
    """``label message`` on stderr (a skipped file), the message printed as it is."""
    err_console.print(Text.assemble((label, "yellow"), " ", message), soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"mmm-eeg {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log details and tracebacks.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    logging.basicConfig(format="%(message)s")
    logging.getLogger("mmm_eeg").setLevel(logging.INFO if verbose else logging.WARNING)
