"""The gallery strip under the image: one row of icons, everything classified in this session."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QListView

from cnndesk.qt.item_models.gallery import ICON


def gallery_strip(model) -> QListView:
    view = QListView()
    view.setModel(model)
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setFlow(QListView.Flow.LeftToRight)
    view.setWrapping(False)
    view.setIconSize(QSize(ICON, ICON))
    view.setGridSize(QSize(ICON + 44, ICON + 44))
    view.setWordWrap(True)
    view.setMovement(QListView.Movement.Static)
    view.setResizeMode(QListView.ResizeMode.Adjust)
    view.setFixedHeight(ICON + 66)
    view.setToolTip("Everything classified in this session; click one to see its result")
    view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
    return view
