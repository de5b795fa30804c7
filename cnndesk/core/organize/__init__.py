"""Moving the user's files by label: sorting into folders and the undo journal. No torch."""
