"""The index process's Tracker: progress events in, Activity snapshots out
(throttled), and the end of the work never dropped."""

from __future__ import annotations

from app.core.knowledge import progress as ev
from app.core.knowledge.index_server import Tracker
from app.core.knowledge.protocol import Activity


def tracker() -> tuple[Tracker, list[Activity], list[ev.Stats], list[str]]:
    sent: list[Activity] = []
    finished: list[ev.Stats] = []
    problems: list[str] = []
    return Tracker(sent.append, finished.append, problems.append), sent, finished, problems


def test_a_live_change_ends_not_busy_however_quickly_it_was_read() -> None:
    track, sent, finished, _ = tracker()
    track(ev.FileStarted("/notes/a.md"))
    track(ev.FileDone("/notes/a.md", chunks=2, embedded=2))  # well within the throttle
    assert sent[0] == Activity(0, 1, "/notes/a.md", 0)
    assert sent[-1] == Activity(1, 1, "", 0) and not sent[-1].busy
    assert finished == []  # a live change has no summary


def test_a_scan_is_throttled_counted_and_summed_up() -> None:
    track, sent, finished, problems = tracker()
    track(ev.Scanning("/notes"))
    track(ev.Scanned("/notes", files=50, changed=40))
    track(ev.FolderUnavailable("/usb", "the drive is not there"))
    for i in range(40):
        track(ev.FileStarted(f"/notes/{i}.md"))
        if i == 7:
            track(ev.FileFailed(f"/notes/{i}.md", "skipped", "not text"))
        else:
            track(ev.FileDone(f"/notes/{i}.md", chunks=1, embedded=1))
    stats = ev.Stats(files_seen=50, indexed=39, skipped=1)
    track(ev.RunDone(stats))
    assert len(sent) < 20  # 80 file events, throttled
    # Busy until the last file is read; its end and the summary's both go out.
    assert [a for a in sent if not a.busy] == [Activity(40, 40, "", 1)] * 2
    assert sent[-1] == Activity(40, 40, "", 1)
    assert finished == [stats]
    assert problems == ["/usb: the drive is not there"]
    # The next run counts from zero.
    track(ev.FileStarted("/notes/new.md"))
    track(ev.FileDone("/notes/new.md", chunks=1, embedded=1))
    assert sent[-1] == Activity(1, 1, "", 0)
