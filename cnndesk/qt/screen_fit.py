"""Fit windows to small and high-DPI screens: a window never opens larger than the screen's
available area (1280×720 laptops, 1600×1000 at 200 % = 800×500 logical px)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QScrollArea, QSizePolicy, QStackedWidget, QTabWidget, QWidget


def fit_to_screen(widget: QWidget, width: int, height: int, margin: int = 24) -> None:
    """Resize ``widget`` to ``width``×``height`` or less, so it fits its screen's available area,
    and move it back on screen when a restored geometry put it partly off."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        widget.resize(width, height)
        return
    avail = screen.availableGeometry()
    w = min(width, max(200, avail.width() - margin))
    h = min(height, max(200, avail.height() - margin - 32))  # leave room for the title bar
    widget.resize(w, h)
    geo = widget.frameGeometry()
    x = min(max(geo.x(), avail.x()), avail.right() - geo.width())
    y = min(max(geo.y(), avail.y()), avail.bottom() - geo.height())
    if (x, y) != (geo.x(), geo.y()):
        widget.move(max(avail.x(), x), max(avail.y(), y))


def scrolling(page: QWidget) -> QScrollArea:
    """``page`` in a frameless scroll area that gives it all the room there is and scrolls only
    when the window is smaller than the page's minimum (1280x720 at 200 % is 640x360 logical px:
    the main window's tabs need about 750x480, and the window used to grow past the screen)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(page)
    for pages in [page, *page.findChildren(QTabWidget)]:  # the drop zone needs far less than the tabs,
        if isinstance(pages, (QStackedWidget, QTabWidget)):  # and the Images tab less than Inside the CNN
            size_to_current(pages)
    return area


def size_to_current(pages: QStackedWidget | QTabWidget) -> None:
    """A stacked or tab widget asks for the largest minimum of all its pages; from now on the
    hidden pages' sizes are ignored (each page keeps its own size policy while it is shown), so a
    scroll area around it scrolls only for the page on show."""
    own: dict = {}
    # the pages themselves: a tab widget's own stack (its count() lags while a tab is inserted)
    stack = pages if isinstance(pages, QStackedWidget) else pages.findChild(
        QStackedWidget, "qt_tabwidget_stackedwidget", Qt.FindChildOption.FindDirectChildrenOnly) or pages

    def only_current(_index: int = 0) -> None:
        ignored = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        for i in range(stack.count()):
            w = stack.widget(i)
            own.setdefault(w, QSizePolicy(w.sizePolicy()))
            w.setSizePolicy(own[w] if w is pages.currentWidget() else ignored)
        pages.updateGeometry()

    pages.currentChanged.connect(only_current)
    if isinstance(stack, QStackedWidget):  # a page added later (the Label tab) is hidden too
        stack.widgetAdded.connect(only_current)
    only_current()
