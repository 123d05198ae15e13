"""``make bench``: pubkit on a synthetic course, against a bare pandoc + WeasyPrint floor.

A course of 60 lessons (6 modules of 10) is made from the sample lesson under new titles,
in a temporary folder. Every figure comes from a fresh process, as a user runs pubkit:

- floor: the same lesson through bare pandoc + WeasyPrint (one Markdown → HTML conversion
  and one PDF with the theme's stylesheet, no header, no second pass) plus pandoc's EPUB,
  in a new process, as a script would run it (the median of three): the issue's "floor",
  which both targets are measured against. Also per lesson warm (the median over several
  lessons in one process): a stricter yardstick, reported without a target;
- the first build of a session: one lesson, with no EPUBCheck daemon running (any is
  stopped first), so it starts the JVM the builds after it share;
- one lesson, cold, every edition (``pubkit build LESSON`` in a fresh course, with the
  default jobs, one per core: its three editions, thumbnail and the downloads page;
  collections are made by whole-course builds), in three rounds;
- the whole course, cold, ``--jobs 2``, with the CPU time it used, in three rounds;
- each round against a floor measured just before it, and a course's round against the
  mean of the floors measured just before and just after it (the machine's speed drifts
  over the half-minute a course takes, so a ratio is only fair between figures taken
  together): the median round is reported, and every round's ratio;
- then the no-op rebuild after a local build (answered from the stamps that build kept,
  :mod:`pubkit.stamps`; and, for information, with none kept: every lesson looked at),
  and the rebuild after one lesson changed (a sentence appended to a lesson of another
  module in each round), against the one lesson's cold build;
- the course on a Dask cluster (``--scheduler``: a ``LocalCluster`` of two worker
  processes of one thread each, started before and kept, as a real cluster runs) against
  the same cold build locally just before it (target: 1.15 ×), in three rounds, after
  one lesson built on it (a cluster's workers have set lessons before);
- ``pubkit preview`` on the course: from a lesson's save to its new first page drawn for
  the browser (the announcing event, then the page as the page asks for it), against the
  one lesson's cold build, in three rounds;
  and the largest peak memory of a worker, and of any process the build started (a
  worker's pandoc session is one);
- the course's lessons alone (``pubkit build manuscript``: no module collections), cold,
  ``--jobs 2``, reported without a target, to show what the collections cost;
- what validation costs (every EPUB through EPUBCheck, in one JVM): each cold course
  round is followed by the same build with ``--no-validate``, and each one-lesson round
  likewise; the median of the rounds' shares is reported (target: 15 % of the course);
- a technical lesson: 200 formulas and 30 code blocks, against the same lesson with its
  math and code as plain text (target: 2 ×), in three rounds;
- whether WeasyPrint has HarfBuzz's subsetter (``libharfbuzz-subset``), without which
  every PDF is about three times slower to write.

Prints a table and writes the figures as JSON (``--json PATH``, default bench.json).
The machine is shared and noisy: compare the ratios, which are measured in one run.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, NamedTuple

from rich.console import Console
from rich.table import Table

import pubkit
from pubkit.course.validate import daemon_file
from pubkit.engines.weasy import machine_notices
from pubkit.sources.config import builtin_styles

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "manuscript/09-the-human-craft/50-career-growth-for-product-managers.md"
MODULES, PER_MODULE = 6, 10
JOBS = 2
#: Cold builds of one lesson, and of the course, each paired with the floor measured
#: around it.
ROUNDS = 3
#: The course on a Dask cluster, each paired with a local build just before it.
CLUSTER_ROUNDS = 3

#: Targets from the issues, for this 2-core machine.
TARGETS = {
    "course_over_floor": 1.0,  # whole course ÷ (floor × lessons ÷ 2)
    "lesson_over_floor": 1.6,  # one lesson cold ÷ floor cold
    "changed_over_lesson": 1.5,  # one lesson changed in the course ÷ that lesson cold
    "preview_over_lesson": 1.5,  # a save in pubkit preview to its new pages ÷ that lesson cold
    "cluster_over_local": 1.15,  # the course on a 2-worker LocalCluster ÷ locally, --jobs 2
    "noop_seconds": 0.3,
    "worker_mb": 300.0,
    "validation_share": 0.15,  # (validated − unvalidated) ÷ validated, course cold
    "technical_over_plain": 2.0,  # 200 formulas and 30 code blocks ÷ the same as text
}

#: The technical lesson's pieces: a formula of each kind, and a code block.
FORMULAS = (
    r"$\alpha_{{{n}}} = \frac{{x^2 + {n}}}{{\sqrt{{y_{n}}}}}$",
    r"$\sum_{{i=1}}^{{{n}}} i^2 = \frac{{n(n+1)(2n+1)}}{{6}}$",
)
CODE = "```python\ndef f{n}(x):\n    return [i ** 2 for i in range(x)]  # {n}\n```\n"


def technical_lessons(root: Path) -> tuple[Path, Path]:
    """The technical lesson and its plain twin, each alone in a course of its own."""
    made = []
    for name, plain in (("technical", False), ("plain", True)):
        project = root / name
        (project / "manuscript/01-m").mkdir(parents=True)
        (project / "manuscript/01-m/module.yaml").write_text("number: 1\ntitle: Bench\n")
        (project / "pubkit.yaml").write_text("editions: [pdf, handout, epub]\n")
        parts = []
        for n in range(200):
            formula = FORMULAS[n % 2].format(n=n)
            parts.append(f"Paragraph {n} holds {formula.strip('$') if plain else formula}.")
            if n % 6 == 0 and len([p for p in parts if "def f" in p]) < 30:
                code = CODE.format(n=n)
                parts.append(code.replace("```python", "```") if plain else code)
        body = "\n\n".join(parts).replace("\\", "\\\\" if plain else "\\")
        lesson = project / "manuscript/01-m/01-technical.md"
        lesson.write_text(f"---\nlesson: 1\ntitle: Technical\n---\n\n{body}\n")
        made.append(project)
    return made[0], made[1]


FLOOR = textwrap.dedent(
    """
    import json, sys, time
    start = time.perf_counter()
    from pathlib import Path
    import pypandoc
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration
    from pubkit.editions import EDITIONS
    from pubkit.sources.theme import load_theme
    pandoc = pypandoc.get_pandoc_path()
    import subprocess
    theme = load_theme(Path(sys.argv[1]))
    fonts = FontConfiguration()
    sheet = theme.stylesheet(EDITIONS["pdf"].stylesheets, "pdf", "A4", lambda f: f.path.as_uri())
    css = CSS(string=sheet, font_config=fonts)
    times = []
    for path in sys.argv[3:]:
        begin = time.perf_counter()
        html = subprocess.run([pandoc, "--from", "commonmark_x", "--to", "html5", path],
                              capture_output=True, check=True).stdout.decode()
        HTML(string=html, base_url=str(Path(path).parent)).write_pdf(
            stylesheets=[css], font_config=fonts)
        subprocess.run([pandoc, "--from", "commonmark_x", "--to", "epub3", path,
                        "--output", sys.argv[2]], check=True)
        times.append(time.perf_counter() - begin)
    print(json.dumps({"total": time.perf_counter() - start, "lessons": times}))
    """
)

RUNNER = textwrap.dedent(
    """
    import json, resource, sys, time
    start = time.perf_counter()
    from pathlib import Path
    from pubkit.build import build
    result = build(
        Path(sys.argv[1]),
        map(Path, sys.argv[4:]),
        jobs=int(sys.argv[2]) or None,
        validate=sys.argv[3] == "validate",
    )
    used = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    print(json.dumps({
        "seconds": time.perf_counter() - start,
        "cpu_seconds": sum(u.ru_utime + u.ru_stime for u in used),
        "ok": result.ok,
        "built": sum(not r.skipped for r in result.built),
        "skipped": sum(r.skipped for r in result.built),
        "worker_bytes": result.peak_worker_bytes,
        "parent_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        # Linux: the largest of the processes reaped, and of those they reaped in turn
        "child_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    }))
    """
)


def make_course(root: Path, modules: int, per_module: int) -> list[Path]:
    """The sample lesson, under new titles and numbers, in ``modules`` modules."""
    text = SEED.read_text(encoding="utf-8")
    _, front, body = text.split("---\n", 2)
    lines = [line for line in front.splitlines() if not line.startswith(("lesson:", "title:"))]
    # The three editions every stop has measured (the instructor edition, a fourth layout
    # of each lesson, would move the figures away from the earlier stops').
    (root / "pubkit.yaml").write_text(
        "course:\n  title: Benchmark Course\n  publisher: pubkit\neditions: [pdf, handout, epub]\n"
    )
    lessons = []
    for m in range(1, modules + 1):
        folder = root / "manuscript" / f"{m:02d}-module"
        folder.mkdir(parents=True)
        (folder / "module.yaml").write_text(f"number: {m}\ntitle: Benchmark Module {m}\n")
        for i in range(1, per_module + 1):
            number = (m - 1) * per_module + i
            head = "\n".join([f"lesson: {number}", f"title: Growth, Part {number}", *lines])
            path = folder / f"{number:02d}-growth.md"
            path.write_text(f"---\n{head}\n---\n{body}", encoding="utf-8")
            lessons.append(path)
    return lessons


def run_json(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    done = subprocess.run(args, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    if done.returncode != 0:
        sys.exit(f"bench: a measurement failed:\n{done.stderr}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def pubkit_build(
    project: Path, jobs: int, *targets: Path, validate: bool = True, scheduler: str | None = None
) -> dict[str, Any]:
    """A build in a fresh process, as a user runs it (on the Dask cluster at
    ``scheduler``, given through the environment, when one is given)."""
    checks = "validate" if validate else "no-validate"
    command = [sys.executable, "-c", RUNNER, str(project), str(jobs), checks, *map(str, targets)]
    env = {**os.environ, "DASK_SCHEDULER_ADDRESS": scheduler} if scheduler else None
    result = run_json(command, env=env)
    if not result["ok"]:
        sys.exit(f"bench: the build of {project} failed")
    return result


def timed_cli(project: Path, *args: str, cache: Path | None = None) -> float:
    """``pubkit build`` run as a user runs it (in pubkit's cache at ``cache``)."""
    env = {**os.environ, **({"PUBKIT_CACHE": str(cache)} if cache else {})}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pubkit", "build", "--quiet", *args],
        cwd=project,
        env=env,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"bench: pubkit build failed:\n{done.stderr.decode()}")
    return time.perf_counter() - start


class Round(NamedTuple):
    """One cold build, and the floor measured around it."""

    floor: float
    build: dict[str, Any]
    #: Lessons per core: the floors the build is allowed at 1 × (lessons ÷ jobs).
    share: float

    @property
    def seconds(self) -> float:
        seconds: float = self.build["seconds"]
        return seconds

    @property
    def ratio(self) -> float:
        """The build's time over its budget at 1 × (floor × lessons ÷ jobs)."""
        return self.seconds / (self.floor * self.share)


def median_round(rounds: list[Round]) -> Round:
    return sorted(rounds, key=lambda r: r.ratio)[len(rounds) // 2]


def clean(project: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pubkit", "clean"], cwd=project, capture_output=True, check=True
    )


def stop_daemon() -> None:
    """Stop this user's EPUBCheck daemon, if one runs (:mod:`pubkit.course.validate`)."""
    place = daemon_file()
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(place.read_text().split()[2]), signal.SIGTERM)
        place.unlink()
    time.sleep(0.5)


def floor_cold(theme: Path, epub: str, lesson: Path) -> float:
    """The floor for one lesson, cold: the median of three fresh processes."""
    seconds: float = statistics.median(
        run_json([sys.executable, "-c", FLOOR, str(theme), epub, str(lesson)])["total"]
        for _ in range(3)
    )
    return seconds


def _events(response: Any) -> Any:
    """The states a preview's event stream sends, as they come."""
    data: list[str] = []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\n")
        if line.startswith("data: "):
            data.append(line[6:])
        elif not line and data:
            yield json.loads("\n".join(data))
            data = []


def _lesson_state(state: dict[str, Any], lesson_id: str) -> dict[str, Any]:
    return next(
        lesson
        for module in state["modules"]
        for lesson in module["lessons"]
        if lesson["id"] == lesson_id
    )


def _settled(host: str, port: int) -> dict[str, Any]:
    """The preview's state once no build has been under way for two seconds (a saved
    lesson's build is followed by its module's collection's)."""
    import http.client

    quiet_since = time.monotonic()
    while True:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        connection.request("GET", "/api/state")
        state: dict[str, Any] = json.loads(connection.getresponse().read())
        connection.close()
        if state["busy"] or state["took"] is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 2.0:
            return state
        time.sleep(0.1)


def preview_rounds(project: Path, edited: list[Path]) -> list[float]:
    """``pubkit preview`` on the built course: for each lesson, the time from its save
    (a sentence appended) until the page has its new first page: the state that announces
    the lesson's new PDF, then that page drawn, as the page asks for them. Each round
    waits for the build after it (the module's collection) to end."""
    import http.client
    import re
    import urllib.parse

    command = [sys.executable, "-m", "pubkit", "preview", "--no-browser", "--port", "0"]
    process = subprocess.Popen(
        command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        found = None
        while found is None:
            line = process.stdout.readline()
            assert line, "pubkit preview stopped"
            found = re.search(r"http://([\d.]+):(\d+)/", line)
        host, port = found.group(1), int(found.group(2))
        stream = http.client.HTTPConnection(host, port, timeout=600)
        stream.request("GET", "/api/events")
        states = _events(stream.getresponse())
        state = _settled(host, port)  # the first build: all up to date
        times = []
        for path in edited:
            lesson_id = f"{path.parent.name}/{path.stem}"
            before = _lesson_state(state, lesson_id)["editions"]["pdf"]["version"]
            start = time.perf_counter()
            path.write_text(path.read_text() + "\nA sentence saved in the preview.\n")
            while True:
                state = next(states)
                version = _lesson_state(state, lesson_id)["editions"]["pdf"]["version"]
                if version != before:
                    break
            query = urllib.parse.urlencode({"lesson": lesson_id, "edition": "pdf"})
            page = http.client.HTTPConnection(host, port, timeout=600)
            page.request("GET", f"/api/pages?{query}")
            page.getresponse().read()
            page.request("GET", f"/api/page.png?{query}&n=1&v={version}")
            assert page.getresponse().read().startswith(b"\x89PNG")
            times.append(time.perf_counter() - start)
            state = _settled(host, port)  # the module's collection too
        return times
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


@contextlib.contextmanager
def local_cluster() -> Any:
    """A Dask cluster on this machine, as the docs say to run one: two worker processes
    of one thread each, allowed to start the processes each lesson is set in."""
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set({"distributed.worker.daemon": False}),
        LocalCluster(
            n_workers=JOBS, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
    ):
        yield cluster.scheduler_address


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path("bench.json"))
    parser.add_argument("--modules", type=int, default=MODULES)
    parser.add_argument("--per-module", type=int, default=PER_MODULE)
    options = parser.parse_args()
    console = Console()
    # pubkit's bytecode, as an installed pubkit has it (pip compiles it on install): an
    # editable install under PYTHONDONTWRITEBYTECODE would otherwise compile every module
    # anew in every process (60 ms of a no-op rebuild's 0.2 s).
    compileall.compile_dir(Path(pubkit.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="pubkit-bench-") as tmp:
        base = Path(tmp)
        course = base / "course"
        course.mkdir()
        lessons = make_course(course, options.modules, options.per_module)
        single = base / "single"
        single.mkdir()
        (lesson,) = make_course(single, 1, 1)
        alone = base / "lessons"
        alone.mkdir()
        make_course(alone, options.modules, options.per_module)
        theme = builtin_styles()
        epub = str(base / "floor.epub")

        console.print(f"[bold]pubkit bench[/]: {len(lessons)} lessons in {tmp}")
        warm = run_json([sys.executable, "-c", FLOOR, str(theme), epub, *map(str, lessons[:7])])[
            "lessons"
        ][1:]  # the first pays for loading fonts
        floor_warm = statistics.median(warm)
        console.print(f"floor, per lesson warm: {floor_warm:.2f} s")

        stop_daemon()
        clean(single)
        first_build = pubkit_build(single, 0, lesson)["seconds"]
        console.print(
            f"one lesson, the session's first build (starts EPUBCheck): {first_build:.2f} s"
        )
        ones, one_shares = [], []
        for number in range(ROUNDS):
            clean(single)
            floor = floor_cold(theme, epub, lesson)
            ones.append(Round(floor, pubkit_build(single, 0, lesson), 1))  # 0: a job per core
            clean(single)
            unchecked = pubkit_build(single, 0, lesson, validate=False)["seconds"]
            one_shares.append(1 - unchecked / ones[-1].seconds)
            console.print(
                f"one lesson, round {number + 1}: {ones[-1].seconds:.2f} s"
                f" against a floor of {floor:.2f} s: {ones[-1].ratio:.2f} ×;"
                f" {unchecked:.2f} s unvalidated"
            )
        rounds, shares = [], []
        for number in range(ROUNDS):
            clean(course)
            before = floor_cold(theme, epub, lessons[0])
            built = pubkit_build(course, JOBS)
            after = floor_cold(theme, epub, lessons[0])
            rounds.append(Round((before + after) / 2, built, len(lessons) / JOBS))
            clean(course)
            unchecked = pubkit_build(course, JOBS, validate=False)["seconds"]
            shares.append(1 - unchecked / built["seconds"])
            console.print(
                f"course, cold, round {number + 1}: {rounds[-1].seconds:.2f} s against a"
                f" floor of {rounds[-1].floor:.2f} s ({before:.2f} s before it, {after:.2f} s"
                f" after): {rounds[-1].ratio:.2f} ×; {unchecked:.2f} s unvalidated"
            )
        technical, plain = technical_lessons(base)
        technical_ratios = []
        cached_ratios = []
        for number in range(ROUNDS):
            clean(technical)
            clean(plain)
            # Cold: no formula drawn before (a cache of its own for the round); then again,
            # from scratch but for the formulas kept (what a later build of the lesson costs).
            os.environ["PUBKIT_CACHE"] = str(base / f"formula-cache-{number}")
            with_math = pubkit_build(technical, 0)["seconds"]
            as_text = pubkit_build(plain, 0)["seconds"]
            clean(technical)
            kept = pubkit_build(technical, 0)["seconds"]
            technical_ratios.append(with_math / as_text)
            cached_ratios.append(kept / as_text)
            console.print(
                f"technical lesson: {with_math:.2f} s ({kept:.2f} s with its formulas kept),"
                f" as plain text {as_text:.2f} s: {technical_ratios[-1]:.2f} ×"
                f" ({cached_ratios[-1]:.2f} ×)"
            )
        os.environ.pop("PUBKIT_CACHE", None)
        cluster_ratios = []
        with local_cluster() as scheduler:
            # A cluster runs before a build and after it: its workers have set lessons.
            clean(single)
            pubkit_build(single, 0, lesson, scheduler=scheduler)
            for number in range(CLUSTER_ROUNDS):
                clean(course)
                here = pubkit_build(course, JOBS)["seconds"]
                clean(course)
                there = pubkit_build(course, JOBS, scheduler=scheduler)["seconds"]
                cluster_ratios.append(there / here)
                console.print(
                    f"course on a 2-worker Dask LocalCluster, round {number + 1}: {there:.2f} s"
                    f" against {here:.2f} s locally: {cluster_ratios[-1]:.2f} ×"
                )
        lessons_only = pubkit_build(alone, JOBS, alone / "manuscript")["seconds"]
        console.print(f"course's lessons alone, cold: {lessons_only:.2f} s")
        # The no-op after a local build (the last was on the cluster): answered from the
        # stamps that build kept; then the same with no stamps to answer from, every
        # lesson looked at (each run in a cache of its own, empty).
        timed_cli(course)
        noop = statistics.median(timed_cli(course) for _ in range(3))
        looked = statistics.median(
            timed_cli(course, cache=base / f"no-stamps-{number}") for number in range(3)
        )
        changes = []
        for number in range(ROUNDS):
            edited = lessons[(number * len(lessons)) // ROUNDS + 3]
            edited.write_text(edited.read_text() + "\nOne more closing sentence.\n")
            changes.append(pubkit_build(course, JOBS))
            assert changes[-1]["built"] == 1, changes[-1]
            console.print(f"one lesson changed, round {number + 1}: {changes[-1]['seconds']:.2f} s")
        saved = [lessons[(number * len(lessons)) // ROUNDS + 5] for number in range(ROUNDS)]
        previews = preview_rounds(course, saved)
        console.print(
            "preview, save to new pages: " + ", ".join(f"{seconds:.2f} s" for seconds in previews)
        )

    lessons_n = len(lessons)
    floor = statistics.median(r.floor for r in ones + rounds)
    median, one_round = median_round(rounds), median_round(ones)
    cold, round_floor, one = median.build, median.floor, one_round.seconds
    changed = statistics.median(c["seconds"] for c in changes)
    course_budget = round_floor * lessons_n / JOBS
    warm_budget = floor_warm * lessons_n / JOBS
    figures = {
        "lessons": lessons_n,
        "jobs": JOBS,
        "floor_cold_seconds": round(floor, 3),
        "floor_warm_seconds": round(floor_warm, 3),
        "one_lesson_seconds": round(one, 3),
        "course_cold_seconds": round(cold["seconds"], 3),
        "course_floor_seconds": round(round_floor, 3),
        "course_rounds_over_floor": [round(r.ratio, 2) for r in rounds],
        "one_lesson_floor_seconds": round(one_round.floor, 3),
        "one_lesson_rounds_over_floor": [round(r.ratio, 2) for r in ones],
        "course_cpu_seconds": round(cold["cpu_seconds"], 1),
        "lessons_only_seconds": round(lessons_only, 3),
        "first_build_seconds": round(first_build, 3),
        "noop_seconds": round(noop, 3),
        "noop_looked_seconds": round(looked, 3),
        "one_changed_seconds": round(changed, 3),
        "one_changed_rounds": [round(c["seconds"], 3) for c in changes],
        "changed_over_lesson": round(changed / one, 2),
        "changed_rounds_over_lesson": [round(c["seconds"] / one, 2) for c in changes],
        "cluster_over_local": round(statistics.median(cluster_ratios), 2),
        "cluster_rounds": [round(r, 2) for r in cluster_ratios],
        "preview_seconds": round(statistics.median(previews), 3),
        "preview_over_lesson": round(statistics.median(previews) / one, 2),
        "preview_rounds_over_lesson": [round(seconds / one, 2) for seconds in previews],
        "worker_peak_mb": round(max(r.build["worker_bytes"] for r in rounds) / 2**20, 1),
        "parent_peak_mb": round(max(r.build["parent_bytes"] for r in rounds) / 2**20, 1),
        "child_peak_mb": round(max(r.build["child_bytes"] for r in rounds) / 2**20, 1),
        "lesson_over_floor": round(one_round.ratio, 2),
        "course_over_floor": round(median.ratio, 2),
        "course_over_warm_floor": round(cold["seconds"] / warm_budget, 2),
        "lessons_only_over_floor": round(lessons_only / (floor * lessons_n / JOBS), 2),
        "validation_share": round(statistics.median(shares), 3),
        "validation_shares": [round(share, 3) for share in shares],
        "one_lesson_validation_share": round(statistics.median(one_shares), 3),
        "technical_over_plain": round(statistics.median(technical_ratios), 2),
        "technical_rounds": [round(r, 2) for r in technical_ratios],
        "technical_kept_over_plain": round(statistics.median(cached_ratios), 2),
        "harfbuzz_subset": not machine_notices(),
    }
    checks = {
        "lesson_over_floor": figures["lesson_over_floor"] <= TARGETS["lesson_over_floor"],
        "course_over_floor": figures["course_over_floor"] <= TARGETS["course_over_floor"],
        "noop_seconds": noop < TARGETS["noop_seconds"],
        "changed_over_lesson": figures["changed_over_lesson"] <= TARGETS["changed_over_lesson"],
        "preview_over_lesson": figures["preview_over_lesson"] <= TARGETS["preview_over_lesson"],
        "cluster_over_local": figures["cluster_over_local"] <= TARGETS["cluster_over_local"],
        "worker_mb": figures["worker_peak_mb"] <= TARGETS["worker_mb"],
        "validation_share": figures["validation_share"] <= TARGETS["validation_share"],
        "technical_over_plain": (
            figures["technical_over_plain"] <= TARGETS["technical_over_plain"]
        ),
    }
    figures["targets"] = TARGETS
    figures["met"] = checks

    table = Table(title=f"pubkit bench: {lessons_n} lessons, --jobs {JOBS}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_column("", justify="center")

    def mark(ok: bool) -> str:
        return "[green]✓[/]" if ok else "[red]✗[/]"

    table.add_row(
        "floor, one lesson cold (pandoc HTML + WeasyPrint + pandoc EPUB)",
        f"{floor:.2f} s",
        "",
        "",
    )
    table.add_row("floor, per lesson warm (no target)", f"{floor_warm:.2f} s", "", "")
    table.add_row(
        f"one lesson, cold, all editions (median of {ROUNDS} rounds)",
        f"{one:.2f} s",
        f"≤ {TARGETS['lesson_over_floor'] * one_round.floor:.2f} s",
        "",
    )
    table.add_row(
        f"  ÷ its round's floor, {one_round.floor:.2f} s",
        f"{figures['lesson_over_floor']:.2f}",
        f"≤ {TARGETS['lesson_over_floor']}",
        mark(checks["lesson_over_floor"]),
    )
    table.add_row(
        "  every round",
        ", ".join(f"{ratio:.2f}" for ratio in figures["one_lesson_rounds_over_floor"]),
        "",
        "",
    )
    table.add_row(
        f"course, cold, --jobs {JOBS} (median of {ROUNDS} rounds)",
        f"{cold['seconds']:.2f} s",
        f"≤ {TARGETS['course_over_floor'] * course_budget:.1f} s",
        "",
    )
    table.add_row(
        f"  ÷ (its round's floor, {round_floor:.2f} s, × {lessons_n} ÷ {JOBS})",
        f"{figures['course_over_floor']:.2f}",
        f"≤ {TARGETS['course_over_floor']}",
        mark(checks["course_over_floor"]),
    )
    table.add_row(
        "  every round",
        ", ".join(f"{ratio:.2f}" for ratio in figures["course_rounds_over_floor"]),
        "",
        "",
    )
    table.add_row(
        f"  ÷ (warm floor × {lessons_n} ÷ {JOBS})",
        f"{figures['course_over_warm_floor']:.2f}",
        "",
        "",
    )
    table.add_row(
        f"  CPU used (of {JOBS} × {cold['seconds']:.1f} s)",
        f"{figures['course_cpu_seconds']:.1f} s",
        "",
        "",
    )
    table.add_row(
        "course's lessons alone (no collections), cold",
        f"{lessons_only:.2f} s",
        "",
        "",
    )
    table.add_row(
        f"  ÷ (floor × {lessons_n} ÷ {JOBS})", f"{figures['lessons_only_over_floor']:.2f}", "", ""
    )
    table.add_row(
        "no-op rebuild (pubkit build)",
        f"{noop:.2f} s",
        f"< {TARGETS['noop_seconds']} s",
        mark(checks["noop_seconds"]),
    )
    table.add_row(
        "  with no stamps kept: every lesson looked at",
        f"{figures['noop_looked_seconds']:.2f} s",
        "",
        "",
    )
    table.add_row(
        "one lesson changed in the course ÷ that lesson cold (median round)",
        f"{figures['changed_over_lesson']:.2f}",
        f"≤ {TARGETS['changed_over_lesson']}",
        mark(checks["changed_over_lesson"]),
    )
    table.add_row(
        "  every round",
        ", ".join(
            f"{r:.2f} ({c:.2f} s)"
            for r, c in zip(
                figures["changed_rounds_over_lesson"], figures["one_changed_rounds"], strict=True
            )
        ),
        "",
        "",
    )
    table.add_row(
        "course on a 2-worker Dask LocalCluster ÷ locally, --jobs 2 (median)",
        f"{figures['cluster_over_local']:.2f}",
        f"≤ {TARGETS['cluster_over_local']}",
        mark(checks["cluster_over_local"]),
    )
    table.add_row("  every round", ", ".join(f"{r:.2f}" for r in figures["cluster_rounds"]), "", "")
    table.add_row(
        "pubkit preview: a save to its new pages ÷ that lesson cold (median)",
        f"{figures['preview_over_lesson']:.2f} ({figures['preview_seconds']:.2f} s)",
        f"≤ {TARGETS['preview_over_lesson']}",
        mark(checks["preview_over_lesson"]),
    )
    table.add_row(
        "  every round",
        ", ".join(f"{r:.2f}" for r in figures["preview_rounds_over_lesson"]),
        "",
        "",
    )
    table.add_row(
        "one lesson, a session's first build (starts EPUBCheck's daemon)",
        f"{first_build:.2f} s",
        "",
        "",
    )
    table.add_row(
        "EPUBCheck's share of a cold course (median round)",
        f"{figures['validation_share']:.0%}",
        f"≤ {TARGETS['validation_share']:.0%}",
        mark(checks["validation_share"]),
    )
    table.add_row(
        "  every round",
        ", ".join(f"{share:.0%}" for share in figures["validation_shares"]),
        "",
        "",
    )
    table.add_row(
        "  of one lesson, cold (no target)",
        f"{figures['one_lesson_validation_share']:.0%}",
        "",
        "",
    )
    table.add_row(
        "peak memory per worker",
        f"{figures['worker_peak_mb']:.0f} MB",
        f"≤ {TARGETS['worker_mb']:.0f} MB",
        mark(checks["worker_mb"]),
    )
    table.add_row("peak memory of the build process", f"{figures['parent_peak_mb']:.0f} MB", "", "")
    table.add_row(
        "  of its largest child (a worker, or a worker's pandoc)",
        f"{figures['child_peak_mb']:.0f} MB",
        "",
        "",
    )
    table.add_row(
        "technical lesson (200 formulas, 30 code blocks) ÷ the same as text",
        f"{figures['technical_over_plain']:.2f}",
        f"≤ {TARGETS['technical_over_plain']}",
        mark(checks["technical_over_plain"]),
    )
    table.add_row(
        "the same, its formulas kept from an earlier build",
        f"{figures['technical_kept_over_plain']:.2f}",
        f"≤ {TARGETS['technical_over_plain']}",
        mark(figures["technical_kept_over_plain"] <= TARGETS["technical_over_plain"]),
    )
    table.add_row(
        "HarfBuzz subsetter (libharfbuzz-subset)",
        "yes" if figures["harfbuzz_subset"] else "[red]missing[/]",
        "",
        "",
    )
    console.print(table)
    options.json.write_text(json.dumps(figures, indent=2) + "\n")
    console.print(json.dumps(figures))
    console.print(f"written to {options.json}")


if __name__ == "__main__":
    main()
