"""File ▸ Open Recent lists each file or folder once, however its path was spelled."""

from __future__ import annotations

import os


def test_one_folder_spelled_three_ways_is_listed_once(qtbot, tmp_path):
    from cnndesk.qt.recent import RecentMenu
    from cnndesk.qt.settings import Settings

    folder = tmp_path / "photos"
    folder.mkdir()
    link = tmp_path / "link"
    os.symlink(folder, link)
    settings = Settings()
    opened = []
    menu = RecentMenu(settings, opened.append)
    qtbot.addWidget(menu)
    menu.add(str(folder) + os.sep)  # a dropped folder's URL ends in a slash
    menu.add(str(tmp_path / "." / "photos"))
    menu.add(str(link))
    assert menu.paths() == [str(folder.resolve())]
    # what older versions stored twice is shown once
    settings.set("recent", [str(folder), str(folder) + os.sep, str(tmp_path / "sub" / ".." / "photos")])
    menu.rebuild()
    entries = [a.text() for a in menu.actions() if a.text() and not a.isSeparator()]
    assert entries == ["photos" + os.sep, "Clear Recent"]
    menu.actions()[0].trigger()
    assert opened == [[str(folder.resolve())]]
