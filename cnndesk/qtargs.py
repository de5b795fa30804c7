"""Qt's own command-line options (``-style Fusion``, ``-platform xcb``, ``-reverse``…) pass through
to QApplication instead of being a usage error. Qt-free, so the command line parses it cheaply."""

from __future__ import annotations

WITH_VALUE = {"-style", "-stylesheet", "-platform", "-platformpluginpath", "-platformtheme", "-plugin",
              "-qwindowgeometry", "-qwindowicon", "-qwindowtitle", "-display", "-geometry", "-title",
              "-name", "-session", "-fontengine", "-qmljsdebugger"}
FLAGS = {"-reverse", "-nograb", "-dograb", "-widgetcount", "-sync"}


def split_qt_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` into (cnndesk's arguments, Qt's arguments)."""
    ours: list[str] = []
    qt: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        name = a.split("=", 1)[0]
        if name.startswith("--") and "-" + name[2:] in WITH_VALUE | FLAGS and name[2:] not in ("help",):
            name = "-" + name[2:]  # Qt also accepts --style
            a = name + a[len(name) + 1:]
        if name in WITH_VALUE:
            if "=" in a:
                qt.append(a)
            elif i + 1 < len(argv):
                qt += [a, argv[i + 1]]
                i += 1
            else:
                ours.append(a)  # a dangling option: let argparse report it
        elif a in FLAGS:
            qt.append(a)
        else:
            ours.append(a)
        i += 1
    return ours, qt
