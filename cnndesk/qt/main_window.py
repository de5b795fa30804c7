"""The main window: composition and wiring only. Model work runs in jobs (cnndesk.qt.jobs) on the
one worker abstraction (cnndesk.qt.workers); the UI thread never runs the model or decodes a
full-size image."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QCoreApplication, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QWidget,
)

from cnndesk.core.common.paths import resource_path, sample_images
from cnndesk.core.images.load import IMAGE_EXTENSIONS
from cnndesk.core.models.registry import ModelSpec
from cnndesk.qt import file_dialogs, jobs
from cnndesk.qt.camera.panel import CameraPanel
from cnndesk.qt.folder_results import FolderResults
from cnndesk.qt.gallery_actions import install_gallery_actions
from cnndesk.qt.item_models.gallery import GalleryModel, ItemRole
from cnndesk.qt.label_tab import install_label_workspace
from cnndesk.qt.main_tabs import TAB_CAMERA, TAB_EXPLAIN, TAB_FOLDER, TAB_IMAGES
from cnndesk.qt.model_picker import ModelPicker
from cnndesk.qt.screen_fit import fit_to_screen, scrolling
from cnndesk.qt.settings import Settings
from cnndesk.qt.undo import UndoController
from cnndesk.qt.widgets.drop_zone import DropZone
from cnndesk.qt.widgets.explain_panel import ExplainPanel
from cnndesk.qt.widgets.folder_panel import FolderPanel
from cnndesk.qt.widgets.gallery_strip import gallery_strip
from cnndesk.qt.widgets.image_view import ImageView
from cnndesk.qt.widgets.prediction_panel import PredictionPanel
from cnndesk.qt.widgets.status_message import FadingMessage
from cnndesk.qt.workers import JobKind, JobRunner

MAX_RECENT_PER_OPEN = 3
IMAGE_FILTER = "Images (" + " ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS)) + ");;All files (*)"


class MainWindow(QMainWindow):
    """Composition and wiring: the model picker (:class:`ModelPicker`) owns the classifier, the
    folder results controller (:class:`FolderResults`) the folder table's jobs and sorting."""

    def __init__(self, settings: Settings | None = None):
        super().__init__()
        self.setWindowTitle("cnndesk")
        icon = resource_path("icons", "cnndesk-256.png")
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self.settings = settings or Settings()
        self.runner = JobRunner(self)
        self.undo = UndoController(self.runner, self)
        self.undo.message.connect(lambda t: self.status(t, 8000))

        # -- widgets --------------------------------------------------------------------------
        self.drop_zone = DropZone()
        self.image_view = ImageView()
        self.panel = PredictionPanel()
        self.panel.threshold = self.settings.threshold
        self.gallery_model = GalleryModel(self)
        self.gallery_model.threshold = self.settings.threshold
        self.gallery_model.request_images = self._remake_gallery_images
        self.gallery_model.images_ready.connect(self._gallery_images_ready)
        self.gallery = gallery_strip(self.gallery_model)
        self.gallery.selectionModel().currentChanged.connect(lambda cur, _prev: self._show_item(cur.data(ItemRole)))
        install_gallery_actions(self)

        self.top_split = QSplitter(Qt.Orientation.Horizontal)
        self.top_split.addWidget(self.image_view)
        self.panel_scroll = QScrollArea()  # on a short screen the bars scroll instead of overlapping
        self.panel.setMinimumWidth(0)  # its fixed 300 px minimum clipped the percentages on narrow windows
        self.panel_scroll.setMinimumWidth(200)
        self.panel_scroll.setWidget(self.panel)
        self.panel_scroll.setWidgetResizable(True)
        self.panel_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.panel_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.top_split.addWidget(self.panel_scroll)
        self.top_split.setStretchFactor(0, 3)
        self.top_split.setStretchFactor(1, 2)
        self.images_split = QSplitter(Qt.Orientation.Vertical)
        self.images_split.addWidget(self.top_split)
        self.images_split.addWidget(self.gallery)
        self.images_split.setStretchFactor(0, 1)
        self.images_split.setCollapsible(1, False)

        self.folder_panel = FolderPanel()

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.images_split, "Images")
        self.tabs.addTab(self.folder_panel, "Folder results")
        self.camera_panel = CameraPanel(self.settings, self.runner)
        self.camera_panel.snapshot.connect(self._snapshot)
        self.camera_panel.status.connect(lambda text: self.status(text, 6000))
        self.tabs.addTab(self.camera_panel, "Camera")
        self.explain_panel = ExplainPanel(self.runner)
        self.explain_panel.status.connect(lambda text: self.status(text, 6000))
        self.tabs.addTab(self.explain_panel, "Inside the CNN")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.drop_zone)
        self.stack.addWidget(self.tabs)
        self.setCentralWidget(scrolling(self.stack))  # a screen smaller than the tabs: scroll, not overflow

        self.message = FadingMessage()
        self.statusBar().addWidget(self.message, 1)
        self.training_badge = QPushButton()
        self.training_badge.setFlat(True)
        self.training_badge.setToolTip("A training is running: show it")
        self.training_badge.clicked.connect(self.show_training)
        self.training_badge.hide()
        self.statusBar().addPermanentWidget(self.training_badge)
        self.device_label = QLabel("Loading model…")
        self.device_label.setToolTip("Where the model runs")
        self.statusBar().addPermanentWidget(self.device_label)

        self.models = ModelPicker(self, self.settings, self.runner, self.device_label, self.status)
        self.models.unloaded.connect(lambda: self.camera_panel.set_classifier(None))
        self.models.ready.connect(self._model_ready)
        self.folder = FolderResults(self, self.folder_panel, self.runner, self.settings, self.undo, self.models,
                                    self.status, lambda forward: self._show_tab(TAB_FOLDER if forward else None),
                                    lambda paths: self.add_items(jobs.load_paths_as_items(paths)))

        self._build_actions()
        install_label_workspace(self)
        self.drop_zone.open_images.connect(self.open_images)
        self.drop_zone.open_folder.connect(self.open_folder)
        self.drop_zone.try_sample.connect(self.try_sample)
        self.setAcceptDrops(True)
        self._restore_state()
        fit_to_screen(self, self.width() if self.settings.get("geometry") else 1120, self.height() if self.settings.get("geometry") else 760)

    # -- actions, menus, toolbar --------------------------------------------------------------
    def _action(self, text, slot, shortcut=None, tip=None, icon=None) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        if icon:
            a.setIcon(QIcon.fromTheme(icon))
        a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _build_actions(self):
        self.act_open = self._action("&Open Images…", self.open_images, QKeySequence.StandardKey.Open, "Classify image files (Ctrl+O)", "document-open")
        self.act_folder = self._action("Open &Folder…", self.open_folder, "Ctrl+Shift+O", "Classify every image in a folder (Ctrl+Shift+O)", "folder-open")
        self.act_paste = self._action("&Paste Image", self.paste, QKeySequence.StandardKey.Paste, "Classify an image or image file from the clipboard (Ctrl+V)", "edit-paste")
        self.act_sample = self._action("Try a &Sample", self.try_sample, None, "Classify the bundled sample photos")
        self.act_export = self._action("&Export Results as CSV…", lambda: self.folder.export_results("csv"), "Ctrl+E", "Save the folder results")
        self.act_prefs = self._action("&Preferences…", self.show_preferences, QKeySequence.StandardKey.Preferences, "Top-k, the \"Not sure\" threshold, the device")
        if self.act_prefs.shortcut().isEmpty():
            self.act_prefs.setShortcut(QKeySequence("Ctrl+,"))
        self.act_quit = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_cancel = self._action("Cancel", self.folder.cancel_folder, QKeySequence(Qt.Key.Key_Escape), "Stop the running folder")
        self.act_about = self._action("&About cnndesk", self.show_about)
        self.act_train = self._action("&Train a Model…", self.show_training, "Ctrl+T", "Teach the CNN your own classes from a folder of images (Ctrl+T)")
        self.act_explain = self._action("&Inside the CNN", self.show_explain, "Ctrl+I", "Where the network looks, its layers and filters (Ctrl+I)")
        self.act_models = self._action("&Manage Models…", self.show_models, None, "Rename, delete, import and export your models")
        self.act_camera = self._action("&Camera / Video", self.show_camera, "Ctrl+K", "Classify what a webcam or a video shows, live (Ctrl+K)")

        m = self.menuBar().addMenu("&File")
        from cnndesk.qt.recent import RecentMenu

        self.recent = RecentMenu(self.settings, self.open_paths, self)
        for a in (self.act_open, self.act_folder):
            m.addAction(a)
        m.addMenu(self.recent)
        for a in (self.act_paste, self.act_sample, self.act_camera):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_export)
        m.addSeparator()
        m.addAction(self.act_quit)
        md = self.menuBar().addMenu("&Model")
        md.addAction(self.act_explain)
        md.addAction(self.act_train)
        md.addAction(self.act_models)
        e = self.menuBar().addMenu("&Edit")
        self.addAction(self.undo.action)
        e.addAction(self.undo.action)
        e.addSeparator()
        e.addAction(self.act_paste)
        e.addAction(self.act_prefs)
        h = self.menuBar().addMenu("&Help")
        self.act_guide = self._action("cnndesk &Guide", lambda: self.show_help(0), QKeySequence.StandardKey.HelpContents, "A short guide to the app (F1)")
        self.act_keys = self._action("&Keyboard Shortcuts", lambda: self.show_help(1), "Ctrl+/")
        h.addAction(self.act_guide)
        h.addAction(self.act_keys)
        h.addSeparator()
        h.addAction(self.act_about)

        tb = QToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        # the model picker first: on a narrow window the toolbar's overflow takes the actions (they
        # are in the menus too), never the picker
        tb.addWidget(QLabel(" Model: "))
        self.model_combo = self.models.model_combo
        tb.addWidget(self.model_combo)
        tb.addSeparator()
        tb.addAction(self.act_open)
        tb.addAction(self.act_folder)
        tb.addAction(self.act_paste)
        tb.addAction(self.act_camera)
        tb.addAction(self.act_train)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        tb.addWidget(spacer)
        tb.addAction(self.act_prefs)
        self.addToolBar(tb)

    # -- state ------------------------------------------------------------------------------
    def _restore_state(self):
        geo = self.settings.get("geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        for key, split in (("split_top", self.top_split), ("split_images", self.images_split)):
            s = self.settings.get(key)
            if isinstance(s, QByteArray) and not s.isEmpty():
                split.restoreState(s)

    def closeEvent(self, event):
        td = getattr(self, "train_dialog", None)
        if td is not None and td.running:
            if not td.confirm_stop("quit"):
                event.ignore()
                return
            td.stop_for_quit()
        self.settings.set("geometry", self.saveGeometry())
        self.settings.set("split_top", self.top_split.saveState())
        self.settings.set("split_images", self.images_split.saveState())
        self.camera_panel.shutdown()
        self.gallery_model.stop_requests()
        self.runner.drain()
        QCoreApplication.processEvents()  # deliver what the stopped jobs sent (a stopped training's model)
        for w in QApplication.topLevelWidgets():  # our dialogs close with us, none stays hidden
            if w is not self and w.isWindow() and w.isVisible():
                w.close()
        super().closeEvent(event)

    @property
    def clf(self):
        """The current classifier (None while a model loads)."""
        return self.models.clf

    @property
    def spec(self) -> ModelSpec | None:
        return self.models.spec

    def start(self, paths: list[str] | None = None):
        """Called once the window is shown: load the model, then open ``paths``."""
        if paths:
            self.open_paths(paths)
        QTimer.singleShot(0, self.models.load_current)

    def _model_ready(self, clf, switched: bool) -> None:
        self.camera_panel.set_classifier(clf)
        self.explain_panel.set_model(clf.spec, clf)
        if switched:
            self.reclassify_all()

    def _show_tab(self, index: int | None) -> None:
        """Show the tabs instead of the drop zone, and tab ``index`` unless it is None."""
        self.stack.setCurrentWidget(self.tabs)
        if index is not None:
            self.tabs.setCurrentIndex(index)

    def status(self, text: str, ms: int = 4000):
        """A status-bar message that fades after ``ms`` (0: stays until the next one)."""
        self.message.show_message(text, ms)

    # -- inputs -------------------------------------------------------------------------------
    def open_images(self):
        files = file_dialogs.open_files(self, "Open images", self.settings.get("last_folder"), IMAGE_FILTER)
        if files:
            self.settings.set("last_folder", os.path.dirname(files[0]))
            self.open_paths(files)

    def open_folder(self):
        d = file_dialogs.choose_folder(self, "Classify a folder", self.settings.get("last_folder"))
        if d:
            self.settings.set("last_folder", d)
            self.open_paths([d])

    def try_sample(self):
        self.open_paths([str(p) for p in sample_images()])

    def paste(self):
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None:
            return
        local = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        pasted = jobs.paths_in_text(mime.text()) if not local and mime.hasText() else []
        if local or pasted:
            self.open_paths(local or pasted)
        elif mime.hasImage():
            qimage = QGuiApplication.clipboard().image()
            if qimage.isNull():
                self.status("The clipboard image could not be read")
                return
            self._paste_image(qimage.copy())
        elif mime.hasText() and mime.text().strip():
            self.status("The clipboard text is not the path of an image file or folder that exists")
        else:
            self.status("The clipboard holds no image or image file")

    def open_paths(self, paths: list[str]):
        for p in paths[:MAX_RECENT_PER_OPEN]:
            self.recent.add(p)
        files = [p for p in paths if not os.path.isdir(p)]
        folders = [p for p in paths if os.path.isdir(p)]
        if files:
            self.add_items(jobs.load_paths_as_items(files))
        if folders:
            self.folder.classify_folder(folders)

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()
            self.drop_zone.set_highlight(True)

    def dragLeaveEvent(self, event):
        self.drop_zone.set_highlight(False)

    def dropEvent(self, event):
        self.drop_zone.set_highlight(False)
        mime = event.mimeData()
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)
        elif mime.hasImage():
            event.acceptProposedAction()
            self._paste_image(mime.imageData())

    def _paste_image(self, qimage) -> None:
        self.runner.start(JobKind.PASTE, jobs.image_from_clipboard, qimage, exclusive=False,
                          on_result=lambda item: self.add_items([item]), on_error=lambda exc: self.status(str(exc)))

    # -- single images and the gallery ------------------------------------------------------
    def add_items(self, items: list[jobs.ImageResult]):
        self._show_tab(TAB_IMAGES)
        last = None
        for item in items:
            last = self.gallery_model.add(item)
        if last is not None:
            self.gallery.setCurrentIndex(last)
        self.models.when_ready(lambda: self._classify_items(items))

    def _classify_items(self, items):
        """Classify on a worker in the model's epoch: after a switch, this job's answers are dropped."""
        self.status(f"Classifying {len(items)} image{'s' if len(items) != 1 else ''}…", 0)
        cur = self.gallery.currentIndex().data(ItemRole)
        displays = self.gallery_model.displays_wanted(items, cur.id if cur is not None else None)
        self.runner.start(
            JobKind.IMAGES, jobs.classify_items, self.clf, items, self.settings.top_k, displays, exclusive=False, scope="model",
            on_partial=self._item_done,
            on_result=lambda done: self._items_finished(done),
            on_error=lambda exc: self.status(str(exc), 8000),
        )

    def _item_done(self, result: jobs.ItemClassified):
        idx = self.gallery_model.apply(result)  # the new item replaces the old one, on this thread
        cur = self.gallery.currentIndex()
        if idx.isValid() and cur.isValid() and cur.row() == idx.row():
            self._show_item(result.item)

    def _remake_gallery_images(self, items: list[jobs.ImageResult], with_display: bool):
        kind = JobKind.GALLERY_DISPLAY if with_display else JobKind.GALLERY_THUMBS
        self.runner.start(kind, jobs.gallery_images, [(it, with_display) for it in items],
                          on_partial=self.gallery_model.set_images)

    def _gallery_images_ready(self, item_id: int):
        cur = self.gallery.currentIndex().data(ItemRole)
        if cur is not None and cur.id == item_id and self.gallery_model.has_display(item_id):
            self.image_view.set_image(self.gallery_model.display(cur))

    def _items_finished(self, done):
        bad = sum(1 for d in done if d.error)
        msg = f"Classified {len(done) - bad} image{'s' if len(done) - bad != 1 else ''}"
        self.status(msg + (f"; {bad} could not be read" if bad else ""))

    def _snapshot(self, image, name: str):
        """A camera snapshot: classified at full resolution and kept in the gallery."""
        self.add_items([jobs.ImageResult(name=name, path=None, source=image)])
        self.tabs.setCurrentIndex(TAB_CAMERA)

    def show_camera(self):
        self._show_tab(TAB_CAMERA)

    def _tab_changed(self, index: int):
        if index == TAB_EXPLAIN:
            self.explain_panel.set_item(self.gallery.currentIndex().data(ItemRole))

    def show_explain(self):
        self._show_tab(TAB_EXPLAIN)

    def _show_item(self, item: jobs.ImageResult | None):
        if item is None:
            return
        if self.tabs.currentIndex() == TAB_EXPLAIN:
            self.explain_panel.set_item(item)
        self.image_view.set_image(self.gallery_model.display(item))
        if item.error:
            self.panel.show_error(item.name, item.error)
        elif item.prediction is None:
            self.panel.show_pending(item.name)
        else:
            meta = item.name
            if item.original_size:
                meta += f" · {item.original_size[0]} × {item.original_size[1]}"
            if self.spec:
                meta += f"\n{self.spec.title}"
            self.panel.show_prediction(item.name, item.prediction, meta)

    def reclassify_all(self):
        """After a model switch (or a new novelty threshold): a new epoch, so no answer of a job
        started before lands, then everything is classified again."""
        folder_live = self.runner.running(JobKind.FOLDER)
        self.runner.new_epoch("model")
        items = list(self.gallery_model.items)
        if items:
            self._classify_items(items)
        if self.folder.roots and (folder_live or self.folder_panel.model.rowCount()):
            self.folder.classify_folder(self.folder.roots, show=False)  # the tab the user is on stays

    # -- dialogs -------------------------------------------------------------------------------
    def show_preferences(self):
        from cnndesk.qt.dialogs.preferences import PreferencesDialog

        old_device = self.settings.device
        old_flag = self.clf.novelty_threshold if self.clf is not None else None
        if PreferencesDialog(self.settings, self, model=self.clf).exec():
            self.apply_preferences(old_device)
            if self.clf is not None and self.clf.novelty_threshold != old_flag:
                self.reclassify_all()  # the unknown flags follow the new threshold

    def apply_preferences(self, old_device: str | None = None):
        if self.clf is not None:
            self.clf.set_flag_rate(self.settings.novelty_rate(self.clf.spec.name) / 100)
        self.panel.threshold = self.settings.threshold
        self.gallery_model.set_threshold(self.settings.threshold)
        self._show_item(self.gallery.currentIndex().data(ItemRole))
        if old_device is not None and old_device != self.settings.device:
            self.models.load_current()

    def show_training(self):
        from cnndesk.qt.dialogs.train_dialog import TrainDialog

        if getattr(self, "train_dialog", None) is None:
            self.train_dialog = TrainDialog(self.settings, self.runner, self)
            self.train_dialog.model_saved.connect(self._trained_model_saved)
            self.train_dialog.activity.connect(lambda t: (self.training_badge.setText(t), self.training_badge.setVisible(bool(t))))
        self.train_dialog.show()
        self.train_dialog.raise_()
        return self.train_dialog

    def show_models(self):
        from cnndesk.qt.dialogs.models_dialog import ModelsDialog

        dlg = ModelsDialog(self.runner, self)
        dlg.models_changed.connect(lambda: self.models.refresh_models(self.model_combo.currentData()))
        dlg.show()
        return dlg

    def _trained_model_saved(self, path: str):
        self.models.refresh_models(self.model_combo.currentData())
        self.status(f"Your model {Path(path).stem} is ready: pick it in the model list", 8000)

    def show_help(self, page: int = 0):
        from cnndesk.qt.dialogs.help import HelpDialog

        dlg = HelpDialog(self, page)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()
        return dlg

    def show_about(self):
        from cnndesk.qt.dialogs.about import show_about

        show_about(self, self.clf.describe() if self.clf else "")

