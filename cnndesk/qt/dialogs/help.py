"""Help ▸ cnndesk Guide and Help ▸ Keyboard Shortcuts: a short guide for a first session and the
shortcuts read from the window's own actions (so the list never goes stale)."""

from __future__ import annotations

from html import escape

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTabWidget, QTextBrowser, QVBoxLayout

GUIDE = """
<h2>cnndesk in five minutes</h2>
<h3>Classify</h3>
<p>Drop photos or folders on the window, or use <b>File ▸ Open Images…</b> / <b>Open Folder…</b>.
You can also paste (Ctrl+V) an image, or the path of a file or folder. Each photo gets the
network's top guesses; below the “Not sure” threshold (Preferences) it says so instead of
guessing. Files that cannot be read get a red badge and say why.</p>
<h3>Folders</h3>
<p>A folder fills the <b>Folder results</b> table. Filter by label or confidence — the table
says how many rows it shows — then <b>Export</b> them (CSV/JSON) or <b>Sort into folders</b>
(one folder per label). Export and Sort act on the rows shown. Moves can be undone with
<b>Edit ▸ Undo</b> (Ctrl+Z), even after a restart. Right-click a row to open it, show it in its
folder or copy its path.</p>
<h3>Your own classes</h3>
<p><b>Model ▸ Train a Model…</b> (Ctrl+T): choose a folder with one subfolder per class (e.g.
<i>cats/</i>, <i>dogs/</i>). <b>Quick</b> trains in seconds; <b>Full</b> fine-tunes the network
(minutes, needs the full version). The <b>Evaluation</b> page shows where the model errs; move
a wrongly labelled file to its class and retrain. Your models appear in the model picker.</p>
<p>Not sorted yet? <b>File ▸ Label a Folder…</b> (Ctrl+L) groups a pile of images and asks you
about the ones worth labelling: keys <b>1</b>–<b>9</b> answer with a class, <b>N</b> adds a class,
<b>S</b> skips, <b>Backspace</b> or Ctrl+Z undoes. <b>Accept all above 95 %</b> takes the sure
suggestions; <b>Write dataset…</b> makes the class folders and <b>Train now</b> trains on them.</p>
<h3>Camera and video</h3>
<p><b>File ▸ Camera / Video</b> (Ctrl+K) classifies what a webcam shows, live, or a video file.</p>
<h3>Inside the CNN</h3>
<p><b>Model ▸ Inside the CNN</b> (Ctrl+I) shows where the network looks (Grad-CAM), what its
layers see and its filters.</p>
<h3>Privacy</h3>
<p>Everything runs on this computer. The only network use is downloading a model from the zoo
the first time you pick it.</p>
"""


def shortcuts_html(actions) -> str:
    rows = []
    seen = set()
    for a in actions:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts() if not k.isEmpty()]
        text = a.text().replace("&", "").rstrip("…").strip()
        if text == "Cancel" and a.toolTip():  # a bare "Cancel" says nothing: its tooltip says what
            text = a.toolTip()
        if not keys or not text or (text, tuple(keys)) in seen:
            continue
        seen.add((text, tuple(keys)))
        rows.append(f"<tr><td style='padding:2px 16px 2px 0'><b>{escape(', '.join(keys))}</b></td><td>{escape(text)}</td></tr>")
    rows.append("<tr><td style='padding:2px 16px 2px 0'><b>Delete</b></td><td>Remove the selected photos from the gallery (not from disk)</td></tr>")
    if not any(keys == ("Esc",) for _, keys in seen):  # listed once (the Cancel action has it)
        rows.append("<tr><td style='padding:2px 16px 2px 0'><b>Esc</b></td><td>Stop the running folder</td></tr>")
    return "<h2>Keyboard shortcuts</h2><table>" + "".join(rows) + "</table>"


class HelpDialog(QDialog):
    def __init__(self, parent=None, page: int = 0):
        super().__init__(parent)
        self.setWindowTitle("cnndesk Help")
        self.tabs = QTabWidget()
        self.guide = QTextBrowser()
        self.guide.setOpenExternalLinks(True)
        self.guide.setHtml(GUIDE)
        self.keys = QTextBrowser()
        self.keys.setHtml(shortcuts_html(parent.actions() if parent is not None else []))
        self.tabs.addTab(self.guide, "Guide")
        self.tabs.addTab(self.keys, "Keyboard Shortcuts")
        self.tabs.setCurrentIndex(page)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs)
        lay.addWidget(buttons)
        from cnndesk.qt.screen_fit import fit_to_screen

        fit_to_screen(self, 620, 560)
