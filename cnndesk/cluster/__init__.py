"""Scale-out helpers (optional extras: `pip install 'cnndesk[cluster]'`). Never imported by the
app or the local CLI paths."""
