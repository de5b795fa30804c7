"""The Label workspace (issue 22): a folder as a thumbnail grid, grouped by visual group or by
suggested label; the images worth labelling next, one at a time, large; keys 1-9 for classes, N a
new class, S skip, Backspace / Ctrl+Z undo; counts per class, the estimated accuracy and whether
confidence is calibrated; accept all above 95 %; name a whole group; write the dataset; train a
model on the labels so far (:mod:`.training_row`).

Threads: the :class:`~cnndesk.core.labelling.LabelSession` lives here but is only ever used by one
worker job at a time (:mod:`cnndesk.qt.label_jobs`): the user's answers go into ``_ops`` and are
applied by the next job; after each batch (the queue answered, a bulk action, or a pause) the
suggestions are refitted in that job. What the grid and the counts show comes from the jobs'
:class:`~cnndesk.qt.label_jobs.LabelView` copies."""

from __future__ import annotations

import os

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QWidget,
)

from cnndesk.core.common.safeio import display
from cnndesk.core.labelling.folder import LabelError, check_label
from cnndesk.qt import jobs, label_jobs
from cnndesk.qt.item_models.label_grid import THUMB_SIZE, IndexRole
from cnndesk.qt.item_models.lru import LruCache
from cnndesk.qt.label import dialogs, layout, training_row
from cnndesk.qt.label.keys import LabelKeys
from cnndesk.qt.label_jobs import by_label
from cnndesk.qt.workers import JobKind

ASK = 12  # questions per batch
ACCEPT_ABOVE = layout.ACCEPT_ABOVE
IDLE_REFRESH_MS = 1500
LARGE = 480


class LabelWorkspace(QWidget):
    status = Signal(str)
    model_trained = Signal(str)  # "Train now" saved a model file (the window lists it)
    use_model = Signal(str)  # "Use it": classify with that model file

    def __init__(self, runner, settings=None, parent=None, embed=None):
        super().__init__(parent)
        self.runner, self.settings = runner, settings
        self.embed = embed  # None: the default network's cached multi-stage features
        self.duplicates = True  # near-duplicates by pixels too (the doctor's thumbnails)
        self.session = None
        self.view: label_jobs.LabelView | None = None
        self.root = ""
        self.paths: list[str] = []
        self.names: list[str] = []
        self.unreadable: list[tuple[str, str]] = []  # (path, reason): the files of the folder that cannot be read
        self._reading = ""
        self.groups: list[list[int]] = []
        self.queue: list = []
        self.pos = 0
        self.written: str | None = None
        self.messages: list[str] = []  # everything said, newest last (tests and the status bar)
        self._ops: list[tuple[str, tuple]] = []
        self._advanced: list[bool] = []  # per queued op: did it move the queue on
        self._sent_advanced: list[bool] = []  # the same for the ops sent (what undo steps back over)
        self._refresh_wanted = False
        self._busy = False
        self._large: LruCache[int, object] = LruCache(24)
        self._label_sections = None  # (view, sections) cache of _by_label
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(IDLE_REFRESH_MS)
        self._idle.timeout.connect(self._idle_refresh)
        self.training = training_row.TrainController(self)
        self._build()
        self.keys = LabelKeys(self)
        QApplication.instance().installEventFilter(self.keys)

    # -- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        layout.build(self)

    def _set_loading(self, on: bool) -> None:
        self.progress.setVisible(on)
        self.cancel_btn.setVisible(on)
        self.open_btn.setEnabled(not on)

    def _enable(self) -> None:
        have = self.session is not None
        for w in (self.accept_btn, self.write_btn, self.name_group_btn, self.by, self.section, self.group_count):
            w.setEnabled(have)
        self.train_btn.setEnabled(have and not self.training.running)
        self.panel.setEnabled(have)
        self.name_group_btn.setEnabled(have and self.by.currentIndex() == 0 and self.section.currentData() is not None)

    def say(self, text: str, ms: int = 6000) -> None:
        self.messages.append(text)
        self.status.emit(text)

    # -- opening ------------------------------------------------------------------------------------
    def open_folder(self, folder: str | None = None) -> None:
        if folder is None:
            folder = dialogs.choose_folder(self, "Label a folder", self.root or (self.settings.get("last_folder") if self.settings else ""))
            if not folder:
                return
        self._set_loading(True)
        self.progress.setRange(0, 0)
        self._reading = f"Reading {display(folder, 80)}\u2026"
        self.folder_label.setText(self._reading)
        self.runner.start(JobKind.LABEL_OPEN, label_jobs.open_folder, folder, self.subfolders.isChecked(), self.embed,
                          self.duplicates, ASK, on_progress=self._open_progress, on_result=self._opened,
                          on_error=self._open_failed, on_cancelled=self._open_cancelled)

    def _open_progress(self, done, total, text) -> None:
        if total:
            self.progress.setRange(0, int(total))
            self.progress.setValue(int(done))
        else:
            self.progress.setRange(0, 0)  # busy: a bar shows no text, so what happens is said beside it
        self.progress.setFormat("%p %")
        count = f" ({int(done):,} of {int(total):,})" if total and " of " not in text else ""
        self.folder_label.setText(f"{self._reading} {display(text, 80)}{count}" if text else self._reading)

    def cancel_open(self) -> None:
        self.runner.cancel(JobKind.LABEL_OPEN)
        self._open_cancelled()

    def _open_cancelled(self) -> None:
        if self.progress.isVisible():
            self._set_loading(False)
            layout.show_folder(self)
            self.say("Stopped reading the folder")

    def _open_failed(self, exc) -> None:
        self._set_loading(False)
        layout.show_folder(self)
        text = str(exc)
        if self.session is None:
            self.empty.setText(text)
        self.say(text)

    def _opened(self, res: label_jobs.Opened) -> None:
        self._set_loading(False)
        self.runner.cancel(JobKind.LABEL)
        if res.root != self.root:  # another folder: its groups are not the ones picked before
            self.section.setCurrentIndex(0)
        self.session, self.root, self.paths, self.names = res.view.session, res.root, res.paths, res.names
        self._ops.clear()
        self._advanced.clear()
        self._sent_advanced.clear()
        self._busy, self.queue, self.pos = False, [], 0  # the questions of the folder open before go too
        self._large.clear()
        self.written = None
        self.group_count.blockSignals(True)
        self.group_count.setValue(0)  # automatic for a new folder
        self.group_count.blockSignals(False)
        self.unreadable = res.unreadable
        layout.show_folder(self)
        if self.settings is not None:
            self.settings.set("last_folder", res.root)
        self.model.set_images(res.paths, res.names)
        self.pages.setCurrentIndex(1)
        self._apply(res.view)
        bad = f"; {len(res.unreadable)} files could not be read" if res.unreadable else ""
        kept = "".join(f"; {n}" for n in res.notes if "from last time" in n)
        self.say(f"{len(res.paths)} images in {len(self.groups)} groups{bad}{kept}")
        self._enable()

    # -- showing a view -----------------------------------------------------------------------------
    def _apply(self, v: label_jobs.LabelView) -> None:
        if v.session is not self.session:
            return
        self.view = v if v.refreshed or self.view is None else label_jobs.merge_views(self.view, v)
        if v.paths != self.paths:  # written by moving (or that undone): follow the files
            self.paths = list(v.paths)
            self.model.set_paths(self.paths)
            self._large.clear()
        self.model.set_states(v.states, v.suggestions if v.refreshed else None)
        self.panel.set_classes(v.classes, v.counts)
        for m in v.messages:
            self.say(m)
        if v.refreshed:
            self.groups = v.groups or []
            self._fill_sections()
            if self.pos >= len(self.queue):  # a new batch only once this one is answered
                self.queue, self.pos = [q for q in v.questions if v.states[q.index] is None], 0
                self._sent_advanced.clear()
        self._show_current()
        self._show_stats()

    def _show_stats(self) -> None:
        v = self.view
        if v is None:
            return
        labelled = sum(v.counts.values())
        if v.accuracy is not None:
            acc = f"{v.accuracy:.0%} (out-of-fold on your labels)"
        elif len(used := [n for n in v.counts.values() if n > 0]) >= 2 and min(used) >= 2:
            acc = "not estimated yet (comes with the next suggestions)"
        else:
            acc = "not estimated yet (label at least two images of each class)"
        cal = "calibrated" if v.calibrated else "not calibrated yet (too few labels: scores kept conservative)"
        self.stats.setText(f"{labelled} of {len(self.paths)} labelled \u00b7 estimated accuracy {acc} \u00b7 confidence {cal}")

    def _fill_sections(self) -> None:
        keep = self.section.currentData()
        self.section.blockSignals(True)
        self.section.clear()
        self.section.addItem(f"All images ({len(self.paths)})", None)
        if self.by.currentIndex() == 0 or self.view is None:
            for n, members in enumerate(self.groups):
                self.section.addItem(f"Group {n + 1} ({len(members)})", ("group", n))
        elif self.view is not None and self.view.suggestions is not None:
            for label, rows in self._by_label().items():
                self.section.addItem(f"{label} ({len(rows)})", ("label", label))
        # by value: findData compares a Python tuple by identity, so the section shown fell back
        # to "All images" at every refit
        i = next((n for n in range(self.section.count()) if self.section.itemData(n) == keep), 0)
        self.section.setCurrentIndex(i)
        self.section.blockSignals(False)
        self._show_section()

    def _by_label(self) -> dict[str, list[int]]:
        """The images per suggested label (answers first under their class), most confident first;
        computed once per view."""
        if self._label_sections is None or self._label_sections[0] is not self.view:
            self._label_sections = (self.view, by_label(self.view))
        return self._label_sections[1]

    def _show_section(self) -> None:
        data = self.section.currentData()
        if data is None:
            parts = self.groups if self.by.currentIndex() == 0 else list(self._by_label().values())
            rows = [i for part in parts for i in part] or list(range(len(self.paths)))
        elif data[0] == "group":
            rows = self.groups[data[1]] if data[1] < len(self.groups) else []
        else:
            rows = self._by_label().get(data[1], [])
        if rows != self.model.rows:
            self.model.set_rows(rows)
        self._enable()

    def _show_current(self) -> None:
        states = self.view.states if self.view else []
        while self.pos < len(self.queue) and not self._ops and states[self.queue[self.pos].index] is not None:
            self.pos += 1  # answered meanwhile (accepted in bulk, named with its group)
        if self.pos >= len(self.queue):
            self.panel.show_nothing("Nothing to ask right now: every image is answered or was just asked"
                                    if not self._busy else "Picking the next images\u2026")
            return
        q = self.queue[self.pos]
        self.panel.show_question(self.pos + 1, len(self.queue), self.names[q.index], q.reason)
        img = self._large.get(q.index)
        self.panel.image.set_image(img)
        wanted = [(i, self.paths[i]) for i in [x.index for x in self.queue[self.pos:self.pos + 3]] if self._large.get(i) is None]
        if wanted:
            self.runner.start(JobKind.LABEL_IMAGE, jobs.thumbnails, wanted, LARGE, on_partial=self._large_ready)

    def _large_ready(self, t) -> None:
        if 0 <= t.key < len(self.paths) and t.path == self.paths[t.key]:
            self._large.put(t.key, t.image)
            if self.pos < len(self.queue) and self.queue[self.pos].index == t.key:
                self.panel.image.set_image(t.image)

    def _request_thumbs(self, wanted) -> None:
        self.runner.start(JobKind.LABEL_THUMBS, jobs.thumbnails, wanted, THUMB_SIZE, on_partial=self.model.set_thumb)

    # -- answering ----------------------------------------------------------------------------------
    def current_targets(self) -> tuple[list[int], bool]:
        """The images a key applies to: the grid's selection while the grid has the focus, else
        the queue's image; and whether that moves the queue on."""
        if self.grid.hasFocus():
            rows = [ix.data(IndexRole) for ix in self.grid.selectionModel().selectedIndexes()]
            if rows:
                return sorted(rows), False
        if self.pos < len(self.queue):
            return [self.queue[self.pos].index], True
        return [], False

    def answer_class(self, n: int) -> None:
        classes = self.view.classes if self.view else []
        if n >= len(classes):
            self.say(f"There is no class {n + 1} yet: press N to add one")
            return
        self._answer_current("answer", classes[n])

    def _answer_current(self, op: str, *extra) -> None:
        targets, advances = self.current_targets()
        if self.session is None:
            return
        if not targets:
            self.say("Nothing to answer: pick images in the grid or wait for the next questions")
            return
        for n, i in enumerate(targets):
            self._queue_op(op, (i, *extra), advances and n == 0)
        if advances:
            self.pos += 1
            self._show_current()
        self._refresh_wanted = self._refresh_wanted or self.pos >= len(self.queue)
        self._pump()

    def new_class(self, name: str | None = None, answer_current: bool = True) -> None:
        if self.session is None:
            return
        if name is None:
            name = dialogs.ask_class_name(self)
            if name is None:
                return
        try:
            check_label(name)
        except LabelError as exc:
            self.say(str(exc))
            return
        targets, _ = self.current_targets()
        if answer_current and targets:
            self._answer_current("answer", name)
        else:
            self._queue_op("add_class", (name,), False)
            self._pump()

    def set_group_count(self, n: int) -> None:
        """Regroup the folder into ``n`` visual groups (0: automatic)."""
        self._bulk("set_group_count", (n or None,))

    def accept_above(self) -> None:
        self._bulk("accept_above", (ACCEPT_ABOVE,))

    def name_group(self, label: str | None = None, group: int | None = None) -> None:
        if group is None:
            data = self.section.currentData()
            if not data or data[0] != "group":
                self.say("Pick a group first (By group)")
                return
            group = data[1]
        if label is None:
            label = dialogs.ask_class_name(self, self.view.classes if self.view else [], f"Name group {group + 1}")
            if label is None:
                return
        try:
            check_label(label)
        except LabelError as exc:
            self.say(str(exc))
            return
        self._bulk("name_group", (group, label))

    def follow_undone(self, report) -> None:
        """Edit ▸ Undo put back files a "Write dataset…" by moving took away: follow them now (any
        other undo -- a sort elsewhere, a copy -- leaves the session and its suggestions alone)."""
        mine = set(self.paths)
        if report.entry.mode == "move" and any(new in mine for new, _ in report.restored):
            self._bulk("follow_undone", (report,))

    def _bulk(self, op: str, args: tuple) -> None:
        if self.session is None:
            return
        self._queue_op(op, args, False)
        self._refresh_wanted = True
        self._pump()

    def undo(self) -> None:
        if self.session is None:
            return
        if self._ops:  # not sent yet: just forget it
            self._ops.pop()
            back = self._advanced.pop()
        else:
            self._ops.append(("undo", ()))
            self._advanced.append(False)
            back = self._sent_advanced.pop() if self._sent_advanced else False
            self._refresh_wanted = True
        if back and self.pos > 0:
            self.pos -= 1
            self._show_current()
        self._pump()

    def _queue_op(self, op: str, args: tuple, advances: bool) -> None:
        self._ops.append((op, args))
        self._advanced.append(advances)
        self._idle.start()

    def _idle_refresh(self) -> None:
        if self._busy or self._ops:  # the view does not know of the answers in flight yet: look again after
            self._idle.start()
            return
        # the view a light job returned carries the session's new version, so the version alone
        # cannot tell that the answers since the last refit are not in the suggestions yet
        if self.session is not None and self.view is not None and not self.view.model_current:
            self._refresh_wanted = True
            self._pump()

    def _pump(self) -> None:
        """Send the queued actions to a worker (one job at a time owns the session)."""
        if self._busy or self.session is None or not (self._ops or self._refresh_wanted) or self.runner.drained:
            return  # (quitting: the queued answers stay for keep_pending)
        ops = list(self._ops)
        refresh = self._refresh_wanted
        self._ops.clear()
        self._refresh_wanted = False
        self._busy = True
        session = self.session
        self.runner.start(JobKind.LABEL, label_jobs.apply_ops, session, ops, refresh, ASK,
                          on_result=self._applied, on_error=self._job_failed,
                          on_finished=self._job_done, on_cancelled=self._job_done)
        self._sent_advanced += [a for (op, _), a in zip(ops, self._advanced, strict=True) if op != "undo"]
        self._advanced.clear()

    def _applied(self, v: label_jobs.LabelView) -> None:
        self._apply(v)

    def _job_failed(self, exc) -> None:
        self.say(str(exc))

    def _job_done(self) -> None:
        self._busy = False
        if self.pos >= len(self.queue):
            self._show_current()
        self._pump()

    @property
    def busy(self) -> bool:
        return self._busy or bool(self._ops)

    # -- writing and training -----------------------------------------------------------------------
    def write_dataset(self, out: str | None = None, mode: str | None = None) -> None:
        if self.session is None:
            return
        if not sum((self.view.counts if self.view else {}).values()):
            self.say("Nothing to write yet: label some images first")
            return
        if out is None:
            choice = dialogs.ask_write(self, self.written or self.root.rstrip(os.sep) + "-dataset")  # not the non-empty parent
            if choice is None:
                return
            out, mode = choice
        force = False
        if mode == "labels":  # only the labels file: asked before one is replaced (undo puts it back)
            if os.path.exists(lf := os.path.join(out, label_jobs.LABELS_FILE)) and not dialogs.confirm_replace(self, lf):
                self.say(f"Not written: {display(lf, 80)} is kept")
                return
        elif os.path.isdir(out) and any(os.scandir(out)):
            if not dialogs.confirm_non_empty(self, out):
                self.say(f"Not written: {display(out, 80)} is not empty")
                return
            force = True
        self._when_idle(lambda: self._start_write(out, mode or "copy", force))

    def _when_idle(self, fn) -> None:
        if self._busy or self._ops:
            self._pump()
            QTimer.singleShot(50, lambda: self._when_idle(fn))
        else:
            fn()

    def _start_write(self, out: str, mode: str, force: bool) -> None:
        self._busy = True
        # keep_result: a write stopped half-way (another folder opened meanwhile) still says what it did
        self.runner.start(JobKind.LABEL, label_jobs.write_dataset, self.session, out, mode, force,
                          on_result=self._written, on_error=self._job_failed, keep_result=True,
                          on_finished=self._job_done, on_cancelled=self._job_done)

    def _written(self, w: label_jobs.Written) -> None:
        if w.view.session is not self.session:  # stopped by opening another folder: "Stopped: moved 40 (of 900)..."
            self.say(w.result.describe(), 15000)
            return
        self.written = str(w.result.destination)
        self._apply(w.view)

    def train_now(self) -> None:
        """Train a model (quick, or full as chosen) on the labels so far: no dataset folder needed."""
        self.training.start()

    # -- keys and drops -----------------------------------------------------------------------------
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        dirs = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile() and os.path.isdir(u.toLocalFile())]
        if dirs:
            event.acceptProposedAction()
            self.open_folder(dirs[0])

    def keep_pending(self) -> None:
        """The window quits and its jobs are stopped: the answers still queued are kept, not lost."""
        # no job holds the session: none is running, or the runner was drained (nothing starts
        # any more) and its threads are done -- a quit without the window's close never delivers
        # the last job's finished signal, so _busy can still say True
        idle = not self._busy or (self.runner.drained and self.runner.pool.activeThreadCount() == 0)
        if self.session is not None and self._ops and idle:
            label_jobs.apply_at_quit(self.session, list(self._ops))
            self._ops.clear()

    def shutdown(self) -> None:
        self.runner.cancel(JobKind.LABEL_TRAIN)
        self.model.stop_requests()
        self._idle.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self.keys)

