"""``pubkit build --scheduler``: a course set on a real Dask cluster (a ``LocalCluster`` of
two worker processes, one thread each, as the docs tell a real cluster to run) comes out
in the same bytes as a local build, survives a worker killed mid-build, and fails a bad
lesson alone with the message a local build gives."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pubkit.build import BuildResult, build
from pubkit.errors import PubkitError

PROJECTS = Path(__file__).resolve().parent / "projects"
DATE = "1780000000"  # SOURCE_DATE_EPOCH: the EPUBs' dates, the same in every build


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    import dask
    from distributed import LocalCluster

    # Worker processes that may start processes: each lesson is set in one of its own,
    # bounded in time and memory, as locally.
    with (
        dask.config.set({"distributed.worker.daemon": False}),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as running,
    ):
        yield running


@pytest.fixture(autouse=True)
def fixed_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", DATE)


def course(tmp_path: Path, name: str, lessons: int = 0) -> Path:
    """A copy of sample project ``name``, with ``lessons`` more lessons made from its
    first (a course long enough to lose a worker in)."""
    project = tmp_path / name
    shutil.copytree(PROJECTS / name, project)
    first = sorted((project / "manuscript").glob("*/*.md"))[0]
    text = first.read_text()
    for number in range(lessons):
        extra = first.with_name(f"{50 + number}-more-{number}.md")
        extra.write_text(
            text.replace("lesson: 1\n", f"lesson: {50 + number}\n").replace(
                "title: ", f"title: Copy {number} of ", 1
            )
        )
    return project


def outputs(out: Path) -> dict[str, str]:
    """Every output's SHA-256, by path (the build record aside: it keeps no bytes of an
    output, only their hashes)."""
    return {
        path.relative_to(out).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.name != ".pubkit-state.json"
    }


def address(cluster: object) -> str:
    value: str = cluster.scheduler_address  # type: ignore[attr-defined]
    return value


def test_a_course_set_on_a_cluster_is_the_local_build_byte_for_byte(
    cluster: object, tmp_path: Path
) -> None:
    here, there = course(tmp_path / "a", "blocks"), course(tmp_path / "b", "blocks")
    local = build(here)
    assert local.ok, [str(d) for d in local.diagnostics]
    remote = build(there, scheduler=address(cluster))
    assert remote.ok, [str(d) for d in remote.diagnostics]
    assert remote.collected and remote.peak_worker_bytes > 0
    assert outputs(there / "build") == outputs(here / "build")
    assert len(outputs(here / "build")) > 20
    # The workers see the output folder (this machine's): each wrote what it set there, and
    # sent back only what the build records (a few hundred bytes a lesson).
    written = sum(path.stat().st_size for path in (there / "build").rglob("*") if path.is_file())
    assert 0 < remote.received_from_cluster < written / 50
    assert not list((there / "build/.pubkit/shared").iterdir())  # the build's token is gone
    # The record travels with the outputs: a second build on the cluster does nothing.
    again = build(there, scheduler=address(cluster))
    assert all(result.skipped for result in again.built)


def test_a_course_built_into_an_object_store_is_whole_and_incremental(
    cluster: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fsspec

    here, there = course(tmp_path / "a", "basic"), course(tmp_path / "b", "basic")
    assert build(here).ok
    url = "memory://pubkit-tests/catalogue"
    monkeypatch.setenv("PUBKIT_CACHE", str(tmp_path / "machine-1"))
    result = build(there, out=url, scheduler=address(cluster))
    assert result.ok and result.published == url
    memory = fsspec.filesystem("memory")

    def stored() -> dict[str, str]:
        return {
            path.split("/catalogue/", 1)[1]: hashlib.sha256(memory.cat_file(path)).hexdigest()
            for path in memory.find("/pubkit-tests/catalogue")
        }

    first = stored()
    assert ".pubkit-state.json" in first and "manifest.json" in first
    assert {k: v for k, v in first.items() if k != ".pubkit-state.json"} == outputs(here / "build")
    # Another machine, its mirror empty: the record with the outputs finds it all up to date,
    # fetching the record alone (the store's other files are known by their sizes).
    monkeypatch.setenv("PUBKIT_CACHE", str(tmp_path / "machine-2"))
    again = build(there, out=url)
    assert again.ok and again.built and all(r.skipped for r in again.built)
    assert stored() == first
    mirror = tmp_path / "machine-2" / "stores"
    assert not list(mirror.rglob("*.pdf")) and not list(mirror.rglob("*.epub"))
    # An edit there sends the store that lesson's new editions and its module's collection.
    lesson = there / "manuscript/01-getting-started/02-no-box.md"
    lesson.write_text(lesson.read_text() + "\nA sentence from the second machine.\n")
    edited = build(there, out=url)
    assert [r.lesson.path.name for r in edited.built if not r.skipped] == ["02-no-box.md"]
    changed = {name for name, digest in stored().items() if first.get(name) != digest}
    assert "pdf/01-getting-started/02-no-box.pdf" in changed
    assert "collections/01-getting-started.pdf" in changed
    assert "pdf/01-getting-started/01-first-steps.pdf" not in changed
    # A file:// URL is a local folder.
    folder = tmp_path / "folder-out"
    assert build(there, out=f"file://{folder}").ok
    assert (folder / "manifest.json").is_file()


def test_workers_that_reach_the_store_write_to_it_straight(
    cluster: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store the cluster's workers reach too (here ``local://``, fsspec's local file
    system by URL): each worker writes what it sets straight to the store, and the build
    sends back only what it records; its mirror holds no edition, and the store is the
    local build's bytes."""
    here, there = course(tmp_path / "a", "basic"), course(tmp_path / "b", "basic")
    assert build(here).ok
    monkeypatch.setenv("PUBKIT_CACHE", str(tmp_path / "machine"))
    store = tmp_path / "store"
    result = build(there, out=f"local://{store}", scheduler=address(cluster))
    assert result.ok, [str(d) for d in result.diagnostics]
    assert outputs(store) == outputs(here / "build")
    written = sum(path.stat().st_size for path in store.rglob("*") if path.is_file())
    assert 0 < result.received_from_cluster < written / 50
    mirror = tmp_path / "machine" / "stores"
    assert not [p for p in mirror.rglob("*") if p.suffix in (".pdf", ".epub", ".png")]
    assert not list((store / ".pubkit/shared").iterdir())  # the build's token is gone
    # An edit, built without the cluster: the lesson and its module's book set again, the
    # book from the other lessons' fragments fetched from the store.
    lesson = there / "manuscript/01-getting-started/02-no-box.md"
    before = outputs(store)
    lesson.write_text(lesson.read_text() + "\nOne more sentence.\n")
    edited = build(there, out=f"local://{store}")
    assert [r.lesson.path.name for r in edited.built if not r.skipped] == ["02-no-box.md"]
    changed = {name for name, digest in outputs(store).items() if before.get(name) != digest}
    assert "pdf/01-getting-started/02-no-box.pdf" in changed
    assert "collections/01-getting-started.pdf" in changed
    assert "pdf/01-getting-started/01-first-steps.pdf" not in changed


def test_a_worker_killed_mid_build_leaves_a_complete_identical_build(
    cluster: object, tmp_path: Path
) -> None:
    from distributed import Client

    here, there = course(tmp_path / "a", "basic", 6), course(tmp_path / "b", "basic", 6)
    assert build(here).ok
    with Client(address(cluster)) as client:
        pids = client.run(os.getpid)
        done: list[BuildResult] = []
        building = threading.Thread(
            target=lambda: done.append(build(there, scheduler=address(cluster)))
        )
        building.start()
        # Once a worker is setting a lesson (and has been for a moment), it dies.
        deadline = time.monotonic() + 60
        while not (busy := [w for w, keys in client.processing().items() if keys]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(pids[busy[0]], signal.SIGKILL)
        building.join(timeout=300)
    (result,) = done
    assert result.ok, [str(d) for d in result.diagnostics]
    assert outputs(there / "build") == outputs(here / "build")
    assert not list((there / "build").rglob("*.tmp"))


def test_a_bad_lesson_fails_alone_with_the_message_a_local_build_gives(
    cluster: object, tmp_path: Path
) -> None:
    here, there = course(tmp_path / "a", "basic"), course(tmp_path / "b", "basic")
    for project in (here, there):
        bad = project / "manuscript/01-getting-started/02-no-box.md"
        bad.write_text(bad.read_text() + "\nSee @fig-nowhere for the picture.\n")
    local = build(here)
    remote = build(there, scheduler=address(cluster))
    assert [p.name for p in remote.failed] == [p.name for p in local.failed] == ["02-no-box.md"]
    mine = [str(d).replace(str(there), "") for d in remote.diagnostics]
    theirs = [str(d).replace(str(here), "") for d in local.diagnostics]
    assert mine == theirs
    assert any(":" in line and "fig-nowhere" in line and "error" in line for line in mine)
    assert (there / "build/pdf/01-getting-started/01-first-steps.pdf").is_file()
    assert not (there / "build/pdf/01-getting-started/02-no-box.pdf").exists()


def test_losing_the_scheduler_ends_the_build_with_a_clear_error(tmp_path: Path) -> None:
    import dask
    from distributed import LocalCluster

    project = course(tmp_path, "basic", 6)
    with dask.config.set({"distributed.worker.daemon": False}):
        doomed = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    ended: list[BaseException | BuildResult] = []

    def building() -> None:
        try:
            ended.append(build(project, scheduler=address(doomed)))
        except PubkitError as exc:
            ended.append(exc)

    thread = threading.Thread(target=building)
    thread.start()
    while not (project / "build/pdf").exists() and thread.is_alive():
        time.sleep(0.05)  # the first lesson written: the rest are on the cluster
    doomed.close()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the build hangs without its scheduler"
    (error,) = ended
    assert isinstance(error, PubkitError), error
    assert f"lost the Dask scheduler at {address(doomed)}" in str(error)
    assert not list((project / "build").rglob("*.tmp"))


def _forked_workers() -> set[int]:
    """Processes that Dask's workers run as, or fork (their command line is the same)."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"spawn_main" in cmdline.read_bytes():
                found.add(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_a_closed_cluster_leaves_no_process_behind(tmp_path: Path) -> None:
    import dask
    from distributed import LocalCluster

    before = _forked_workers()
    with (
        dask.config.set({"distributed.worker.daemon": False}),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as small,
    ):
        assert build(course(tmp_path, "basic", 2), scheduler=address(small)).ok
        assert len(_forked_workers() - before) >= 3  # two workers, and what they keep
    deadline = time.monotonic() + 15
    while _forked_workers() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _forked_workers() - before


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    project = course(tmp_path, "basic")
    start = time.monotonic()
    with pytest.raises(PubkitError) as raised:
        build(project, scheduler="tcp://127.0.0.1:9")
    assert time.monotonic() - start < 60
    (diagnostic,) = raised.value.diagnostics
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in diagnostic.message
    assert not (project / "build/pdf").exists()


def test_without_dask_the_scheduler_option_says_what_to_install(tmp_path: Path) -> None:
    project = course(tmp_path, "basic")
    script = "import sys; sys.modules['distributed'] = None\nfrom pubkit.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", script, "build", "--scheduler", "tcp://127.0.0.1:9"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'pubkit[cluster]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_lessons_collections_and_the_downloads_page_are_the_clusters_tasks(
    cluster: object, tmp_path: Path
) -> None:
    from distributed import Client, get_task_stream

    project = course(tmp_path, "basic")
    with Client(address(cluster)) as client, get_task_stream(client) as stream:
        result = build(project, scheduler=address(cluster))
    assert result.ok, [str(d) for d in result.diagnostics]
    tasks = [str(task["key"]) for task in stream.data if "_on_worker" in str(task["key"])]
    # Each lesson, each module's collection, then the downloads page: one task each.
    assert len(tasks) == len(result.built) + len(result.collected) + 1, tasks
    assert len(result.built) == 2 and (project / "build/index.html").is_file()


def test_workers_that_cannot_see_the_course_set_it_from_the_files_sent_them(
    cluster: object, tmp_path: Path
) -> None:
    """The build runs where the course folder is its own (a tmpfs in a mount namespace of
    its own: the cluster's workers see an empty folder there). The workers set every
    lesson, figure, bibliography and collection from their copy of the course's files,
    sent by the build, into the bytes of a local build; messages name the build's paths.
    The output folder is the course's too, which the workers do not see either: they send
    what they set back to the build, which writes it."""
    if subprocess.run(["unshare", "-m", "true"], check=False).returncode != 0:
        pytest.skip("unshare -m is not permitted here (CI runs as root, where it is)")
    here = course(tmp_path / "a", "technical")
    assert build(here).ok
    private, out = tmp_path / "private", tmp_path / "out"
    private.mkdir()
    bad = tmp_path / "02-bad.md"  # then a lesson that cites what no bibliography holds
    bad.write_text("---\nlesson: 2\ntitle: Bad\n---\n\nText.\n\nAs [@nobody2001] said.\n")
    build_there = f"{sys.executable} -m pubkit build --scheduler {address(cluster)}"
    script = (
        f"mount -t tmpfs none {private} && cp -r {PROJECTS / 'technical'} {private}/course"
        f" && cd {private}/course && {build_there} && cp -r build {out}"
        f" && cp {bad} manuscript/01-numerics/ && {build_there} --quiet --out {out}-2"
        "; echo second build: $?"
    )
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SOURCE_DATE_EPOCH": DATE},
    )
    assert "second build: 1" in done.stdout, done.stderr
    # The bad lesson's message names it where the build sees it (relative to the course
    # folder, as locally), not where a worker kept its copy.
    assert "manuscript/01-numerics/02-bad.md:8: error:" in done.stderr, done.stderr
    assert "nobody2001" in done.stderr and "courses/" not in done.stderr
    assert list(private.iterdir()) == []  # what the workers (and this test) see there
    assert outputs(out) == outputs(here / "build")
    assert "collections/01-numerics.pdf" in outputs(out)


def test_a_machine_keeps_a_few_copies_of_a_course_made_of_shared_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's copy of a course after an edit links the files that did not change to
    the ones the last copy has (one file per content); only the newest copies are kept."""
    from pubkit.course import cluster as dask_cluster
    from pubkit.sources.config import load_config

    monkeypatch.setenv("PUBKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dask_cluster, "_COPIES", {})
    project = course(tmp_path, "basic")
    lesson = project / "manuscript/01-getting-started/02-no-box.md"
    made = []
    for edit in range(dask_cluster.KEPT_COPIES + 2):
        lesson.write_text(lesson.read_text() + f"\nEdit {edit}.\n")
        config, _ = load_config(project)
        files, blobs = dask_cluster.snapshot(config)
        ((old, new),) = dask_cluster._kept_copy(files, blobs)
        assert old == str(project.resolve())
        made.append(Path(new))
        time.sleep(0.01)  # copies told apart by their times
    copied = made[-1] / "manuscript/01-getting-started/02-no-box.md"
    assert copied.read_text() == lesson.read_text()
    module = made[-1] / "manuscript/01-getting-started/module.yaml"
    assert module.stat().st_nlink == dask_cluster.KEPT_COPIES + 1  # the file and its links
    courses = tmp_path / "cache/courses"
    assert len([p for p in courses.iterdir() if len(p.name) == 64]) == dask_cluster.KEPT_COPIES
    assert not made[0].exists() and made[-1].exists()
    stored = {p.name for p in (courses / "files").iterdir()}
    assert len(stored) == len(blobs) + dask_cluster.KEPT_COPIES - 1  # each kept edit's file


def _forget_together(courses: Path, start: object) -> None:
    from pubkit.course import cluster as dask_cluster

    start.wait()  # type: ignore[attr-defined]
    dask_cluster._forget_old_copies(courses)


def test_worker_processes_forgetting_old_copies_at_once_all_succeed(tmp_path: Path) -> None:
    """A machine's worker processes may forget old copies of a course at the same time
    (a Dask LocalCluster's two workers did, and one failed its task on a copy the other
    had just removed): each passes over what has gone, and the newest copies stay."""
    import multiprocessing

    from pubkit.course import cluster as dask_cluster

    courses = tmp_path / "courses"
    (courses / "files").mkdir(parents=True)
    names = [f"{n:064x}" for n in range(4 * dask_cluster.KEPT_COPIES)]
    for age, name in enumerate(names):
        for part in range(40):
            kept = courses / "files" / f"{name[-8:]}{part}"
            kept.write_text(name)
            (courses / name / str(part % 4)).mkdir(parents=True, exist_ok=True)
            os.link(kept, courses / name / str(part % 4) / f"{part}.md")
        os.utime(courses / name, (age, age))
    context = multiprocessing.get_context("fork")
    start = context.Barrier(4)
    workers = [context.Process(target=_forget_together, args=(courses, start)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    left = sorted(p.name for p in courses.iterdir() if len(p.name) == 64)
    assert left == names[-dask_cluster.KEPT_COPIES :]
    assert len(list((courses / "files").iterdir())) == 40 * dask_cluster.KEPT_COPIES


def test_a_machine_is_sent_only_the_course_files_it_lacks(cluster: object, tmp_path: Path) -> None:
    """The course's files go to a machine once: a build that changed nothing sends none, a
    build after an edit sends the edited file alone; the outputs are a local build's."""
    here, there = course(tmp_path / "a", "basic"), course(tmp_path / "b", "basic")
    edited = "manuscript/01-getting-started/02-no-box.md"
    for project in (here, there):  # a text no earlier build sent
        lesson = project / edited
        lesson.write_text(lesson.read_text() + f"\nA sentence of {tmp_path.name}.\n")
    first = build(there, scheduler=address(cluster))
    assert first.ok, [str(d) for d in first.diagnostics]
    assert first.sent_to_cluster >= len((there / edited).read_bytes())
    again = build(there, scheduler=address(cluster), force=True)
    assert again.ok and not any(r.skipped for r in again.built)
    assert again.sent_to_cluster == 0
    for project in (here, there):
        lesson = project / edited
        lesson.write_text(lesson.read_text() + "\nOne more sentence.\n")
    after = build(there, scheduler=address(cluster))
    assert after.ok and after.sent_to_cluster == len((there / edited).read_bytes())
    assert build(here).ok
    assert outputs(there / "build") == outputs(here / "build")


def test_a_worker_lacking_files_it_was_not_sent_gets_them_with_its_task(
    cluster: object, tmp_path: Path
) -> None:
    """A worker that joins after the files were sent (here: told it had them all, which no
    machine has) sets its item from the files sent with the task again."""
    from pubkit.course.cluster import Cluster, snapshot
    from pubkit.sources.config import load_config

    project = course(tmp_path, "basic")
    lesson = project / "manuscript/01-getting-started/02-no-box.md"
    lesson.write_text(lesson.read_text() + f"\nA sentence only {tmp_path.name} has.\n")
    config, _ = load_config(project)
    files, blobs = snapshot(config)
    with Cluster(address(cluster), config) as connected:
        connected._shipped = (files, {})  # as if every machine had kept the course
        ((item, text),) = connected.run([lesson], Path.read_text, lambda path: path)
    assert item == lesson and text == lesson.read_text()
    assert connected.sent_bytes == sum(len(data) for data in blobs.values())


def test_the_workers_check_the_epubs_they_set(cluster: object, tmp_path: Path) -> None:
    """On a cluster, each EPUB, a lesson's or a module's, is run through EPUBCheck on the
    worker that set it: a build run where there is no Java checks every EPUB all the same
    (locally, it could not), and fails the lesson whose EPUB EPUBCheck rejects, at the
    manuscript's line, keeping its last good outputs."""
    project = tmp_path / "epub-faults"
    shutil.copytree(PROJECTS / "epub-faults", project)
    lesson = project / "manuscript/01-links/01-dangling.md"
    written = lesson.read_text(encoding="utf-8")
    lesson.write_text(written.split("## A photo")[0], encoding="utf-8")  # valid, at first
    no_java = tmp_path / "bin"  # every program of the machine's but Java
    no_java.mkdir()
    for program in Path("/usr/bin").iterdir():
        if program.name != "java":
            (no_java / program.name).symlink_to(program)
    path = os.pathsep.join([str(no_java), "/usr/sbin"])
    assert shutil.which("java", path=path) is None

    def pubkit_build(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pubkit", "build", "--quiet", *options],
            cwd=project,
            env={**os.environ, "PATH": path, "SOURCE_DATE_EPOCH": DATE},
            capture_output=True,
            text=True,
            check=False,
        )

    alone = pubkit_build("--out", str(tmp_path / "alone"))
    assert "the EPUBs were not validated: EPUBCheck needs Java" in alone.stderr, alone.stderr
    first = pubkit_build("--scheduler", address(cluster))
    assert first.returncode == 0, first.stderr
    assert "not validated" not in first.stderr, first.stderr
    epub, book = (
        project / "build/epub/01-links/01-dangling.epub",
        project / "build/collections/01-links.epub",
    )
    good = epub.read_bytes(), book.read_bytes()
    lesson.write_text(written, encoding="utf-8")  # a JPEG named .png, which EPUBCheck rejects
    second = pubkit_build("--scheduler", address(cluster))
    assert second.returncode == 1, second.stderr
    assert "not validated" not in second.stderr, second.stderr
    found = [line.split(" EPUBCheck")[0] for line in second.stderr.splitlines()]
    assert [line for line in found if " error: " in line] == [
        "manuscript/01-links/01-dangling.md:22: error: epub:"
    ], second.stderr
    assert "manuscript/01-links/01-dangling.md:22: warning: epub:" in found, second.stderr
    assert (epub.read_bytes(), book.read_bytes()) == good
