"""Turn command-line arguments into library calls: a thin click layer over :mod:`pubkit.build`."""

from __future__ import annotations

import atexit
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pubkit import __version__, stamps
from pubkit.editions import EDITIONS
from pubkit.errors import Diagnostic, PubkitError, display_path

if TYPE_CHECKING:
    from pubkit.build import BuildResult, Progress

# The library is imported by the command that uses it: a build with nothing to do is
# answered from its stamps (:mod:`pubkit.stamps`) without loading the rest of pubkit.

F = TypeVar("F", bound=Callable[..., Any])
EXIT_FAILED = 1
EXIT_INTERNAL = 70


def _formats(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    names = [n.strip() for item in value for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in EDITIONS]
    if unknown:
        raise click.BadParameter(
            f"unknown edition {', '.join(unknown)}; choose from {', '.join(EDITIONS)}"
        )
    return tuple(dict.fromkeys(names))


def _report(diagnostics: Iterable[Diagnostic]) -> None:
    _say((str(diagnostic), diagnostic.is_error) for diagnostic in diagnostics)


def _say(notes: Iterable[tuple[str, bool]]) -> None:
    for text, is_error in dict.fromkeys(notes):
        click.secho(text, err=True, fg="red" if is_error else "yellow")


def _guarded(command: F) -> F:
    """Print :class:`PubkitError` as diagnostics; anything else is a pubkit bug."""

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PubkitError as exc:  # ConfigError exits 2, a failed lesson 1
            _report(exc.diagnostics)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo(
                "pubkit: interrupted; finished outputs are whole, the rest untouched", err=True
            )
            sys.exit(130)
        except Exception as exc:
            if os.environ.get("PUBKIT_DEBUG"):
                traceback.print_exc()
            click.echo(
                f"pubkit: internal error: {type(exc).__name__}: {exc}\n"
                "This is a bug in pubkit; set PUBKIT_DEBUG=1 to see where it happened.",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)

    run.__name__ = command.__name__
    run.__doc__ = command.__doc__
    return run  # type: ignore[return-value]


project_option = click.option(
    "-C",
    "--project",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path(),
    show_default="current folder",
    help="Course folder (holding pubkit.yaml and manuscript/).",
)
strict_option = click.option(
    "--strict",
    is_flag=True,
    help="Treat every warning as an error; a lesson warned about fails (unknown fields, "
    "removed HTML, layout findings).",
)
paths_argument = click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))


def run() -> None:
    """The ``pubkit`` command: :func:`main`, then the exit handlers (EPUBCheck's JVM, the
    workers, temporary folders), then an end without tearing the interpreter down: that
    freed a build's heap (fonts, stylesheets, laid-out pages) object by object, 0.15 s
    after every build."""
    try:
        main()
        status: Any = 0
    except SystemExit as exit_:
        status = exit_.code
    if status is not None and not isinstance(status, int):
        print(status, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()  # what the interpreter would run first as it exits
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a reader gone (| head), a stream closed
            stream.flush()
    os._exit(status or 0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pubkit")
def main() -> None:
    """Turn a course's Markdown lessons into PDF, handout and EPUB editions."""


@main.command("build")
@paths_argument
@project_option
@click.option(
    "-f",
    "--format",
    "formats",
    multiple=True,
    callback=_formats,
    help=f"Editions to build, comma-separated: {', '.join(EDITIONS)} (default: all).",
)
@click.option(
    "-o",
    "--out",
    metavar="FOLDER|URL",
    help="Output folder, or an fsspec URL such as s3://bucket/course (needs "
    "pip install 'pubkit[cluster]').",
)
@click.option(
    "--bleed",
    metavar="LENGTH",
    help="Handout for a print shop: bleed beyond the trim, such as 3mm (handout.bleed).",
)
@click.option(
    "--marks/--no-marks",
    default=None,
    help="Handout with crop and registration marks (handout.marks).",
)
@click.option("--force", is_flag=True, help="Rebuild lessons even when they are up to date.")
@click.option("-q", "--quiet", is_flag=True, help="Print errors and warnings only.")
@strict_option
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Lessons set at once, each in its own process (default: one per core).",
)
@click.option(
    "--no-validate",
    "skip_validation",
    is_flag=True,
    help="Write EPUBs without running EPUBCheck on them (quicker drafts).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Set the lessons on the Dask cluster whose scheduler is at ADDRESS "
    "(tcp://host:8786; pubkit.yaml's scheduler, or DASK_SCHEDULER_ADDRESS); needs "
    "pip install 'pubkit[cluster]'.",
)
@_guarded
def build_command(
    paths: tuple[Path, ...],
    project: Path,
    formats: tuple[str, ...],
    out: str | None,
    bleed: str | None,
    marks: bool | None,
    force: bool,
    quiet: bool,
    strict: bool,
    jobs: int | None,
    skip_validation: bool,
    scheduler: str | None,
) -> None:
    """Build every lesson (or the lessons in PATHS), each module's collection and the
    downloads page into build/; what is up to date is skipped."""
    given = {"handout.bleed": bleed, "handout.marks": marks}
    settings = {key: value for key, value in given.items() if value is not None}
    request = stamps.request_key(
        project, paths, formats or None, out, settings, strict, not skip_validation
    )
    if not force and not scheduler and (unchanged := stamps.unchanged(request)):
        _replay(unchanged, quiet)
        return
    from pubkit.build import build

    with _progress(quiet) as progress:
        result = build(
            project,
            paths,
            formats=formats or None,
            out=out,
            force=force,
            progress=progress,
            settings=settings,
            strict=strict,
            jobs=jobs,
            validate=not skip_validation,
            scheduler=scheduler,
        )
    _summarise(result, quiet)
    if not result.ok:
        sys.exit(EXIT_FAILED)


@contextmanager
def _progress(quiet: bool) -> Iterator[Progress | None]:
    """On a terminal, a live display (done of total, the latest lesson, elapsed time);
    otherwise a plain line per lesson; nothing with --quiet. rich is loaded for a
    terminal only (30 ms of a no-op rebuild's 0.3 s)."""
    if quiet:
        yield None
        return
    if not _terminal():

        def line(label: str, done: int, total: int, how: str) -> None:
            click.echo(f"[{done}/{total}] {how}: {label}")

        yield line
        return
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as LiveDisplay

    display = LiveDisplay(
        SpinnerColumn(),
        TextColumn("[bold]Building"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=_console(),
        transient=True,
    )
    task = display.add_task("", total=None)

    def update(label: str, done: int, total: int, how: str) -> None:
        display.update(task, completed=done, total=total, description=escape(label))

    with display:
        yield update


def _terminal() -> bool:
    """Whether standard error is a terminal, as rich judges it (which honours
    ``FORCE_COLOR`` and ``TTY_COMPATIBLE``); rich is asked only when it may be one."""
    if not sys.stderr.isatty() and not {"FORCE_COLOR", "TTY_COMPATIBLE"} & set(os.environ):
        return False
    return bool(_console().is_terminal)


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _summarise(result: BuildResult, quiet: bool) -> None:
    from pubkit.output import MANIFEST_NAME

    _report([*result.warnings, *result.diagnostics])
    skipped = sum(r.skipped for r in result.built)
    where = display_path(result.manifest) if result.manifest else "build/"
    if result.published:
        where = f"{result.published}/{MANIFEST_NAME}"
    _counts(len(result.built) - skipped, skipped, result.failed, where, quiet)


def _replay(report: stamps.Report, quiet: bool) -> None:
    """Print what a build that finds everything up to date prints, from its stamps."""
    if not quiet and not _terminal():
        for done, (what, how) in enumerate(report.ticks, 1):
            click.echo(f"[{done}/{len(report.ticks)}] {how}: {what}")
    _say(report.notes)
    _counts(0, report.lessons, (), display_path(report.manifest), quiet)


def _counts(built: int, skipped: int, failed: Sequence[Path], where: str, quiet: bool) -> None:
    counts = [f"{built} built"]
    counts += [f"{skipped} up to date"] if skipped else []
    counts += [f"{len(failed)} failed"]
    if failed:
        click.secho(", ".join(counts) + ":", err=True, fg="red", bold=True)
        for path in failed:
            click.echo(f"  {display_path(path)}", err=True)
    elif not quiet:
        click.secho(", ".join(counts) + f"; manifest: {where}", fg="green")


@main.command("check")
@paths_argument
@project_option
@click.option(
    "--layout",
    is_flag=True,
    help="Also lay out the PDF editions and proofread their pages: lines in the margin, "
    "headings alone at a page foot, split takeaways boxes, near-empty pages.",
)
@click.option(
    "--epub",
    is_flag=True,
    help="Also run EPUBCheck on the built EPUBs; each message names the manuscript line behind it.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder holding the built EPUBs (with --epub).",
)
@strict_option
@_guarded
def check_command(
    paths: tuple[Path, ...],
    project: Path,
    layout: bool,
    epub: bool,
    out: Path | None,
    strict: bool,
) -> None:
    """Validate pubkit.yaml and the manuscripts without building anything."""
    from pubkit.check import check, check_epubs, check_layout

    # Laying out the pages parses each lesson's Markdown anyway; otherwise check it here.
    checked = check(project, paths, strict=strict, markdown=not layout)
    diagnostics = checked.diagnostics
    findings: list[Diagnostic] = []
    if layout:
        found, findings = check_layout(checked)
        diagnostics += found
    if epub:
        findings += check_epubs(checked, out)
    _report([*diagnostics, *findings])
    read = {lesson.path for lesson in checked.manuscripts.lessons}
    count = len(read)
    lessons = f"{count} lesson{'' if count == 1 else 's'}"
    # A lesson read whole may still fail as it is laid out, or have warnings under --strict.
    failing = {d.path for d in diagnostics if d.is_error} & read
    if checked.manuscripts.failed or any(d.is_error for d in diagnostics):
        failed = len(checked.manuscripts.failed) + len(failing)
        click.secho(f"{count - len(failing)} valid, {failed} with errors", err=True, fg="red")
        sys.exit(EXIT_FAILED)
    if findings:
        noun = "finding" if len(findings) == 1 else "findings"
        click.secho(f"{lessons}: {len(findings)} {noun}", err=True, fg="yellow")
        sys.exit(EXIT_FAILED)
    clean = [name for name, asked in (("layout", layout), ("EPUBs", epub)) if asked]
    click.secho(f"{lessons} valid" + "".join(f", {name} clean" for name in clean), fg="green")


@main.command("clean")
@project_option
@click.option(
    "-o", "--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder."
)
@_guarded
def clean_command(project: Path, out: Path | None) -> None:
    """Remove everything pubkit built (editions, collections, downloads page, build record);
    other files in the output folder stay."""
    from pubkit.output import clean

    removed = clean(project, out)
    noun = "item" if len(removed) == 1 else "items"
    click.echo(f"removed {len(removed)} {noun}" if removed else "nothing to remove")


@main.command("preview")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@project_option
@click.option(
    "-o", "--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder."
)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    help="Port to serve on (default: 8765, or a free one when it is taken; 0: a free one).",
)
@click.option(
    "--host",
    help="Address to listen on (default: 127.0.0.1, this machine only). Another address "
    "lets other machines read the course.",
)
@click.option("--no-browser", is_flag=True, help="Do not open the preview in a browser.")
@_guarded
def preview_command(
    path: Path | None,
    project: Path,
    out: Path | None,
    port: int | None,
    host: str | None,
    no_browser: bool,
) -> None:
    """Build the course (or the lessons under PATH), show it in a browser, and build
    again on every save: the real pages of every edition, the EPUB's chapters, the
    messages of a manuscript that fails. Ctrl-C stops it."""
    from pubkit.preview.server import preview

    def say(text: str, is_error: bool) -> None:
        click.secho(text, err=is_error, fg="red" if is_error else None)

    preview(
        project,
        (path,) if path else (),
        out=out,
        host=host,
        port=port,
        browser=not no_browser,
        say=say,
    )


@main.command("new")
@click.argument("path", type=click.Path(path_type=Path))
@_guarded
def new_command(path: Path) -> None:
    """Create a course in PATH that builds at once: pubkit.yaml with every setting
    explained, one module with one lesson, and styles/custom.css. Existing files are
    never overwritten."""
    from pubkit.scaffold import new_course

    written = new_course(path)
    for file in written:
        click.echo(f"  created {display_path(file)}")
    where = display_path(path)
    step = (
        "pubkit build" if path.resolve() == Path.cwd().resolve() else f"cd {where} && pubkit build"
    )
    click.secho(f"New course in {where}; next: {step}", fg="green")
