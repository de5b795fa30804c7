"""Opening user images (the one loader, a format allow-list, the decode budget) and the model's input preprocessing. No torch."""
