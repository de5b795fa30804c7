"""Indexes of the main window's tabs (shared by the window and its mixins)."""

TAB_IMAGES, TAB_FOLDER, TAB_CAMERA, TAB_EXPLAIN, TAB_LABEL = 0, 1, 2, 3, 4
